using System.Collections.Concurrent;
using OrleansLsn.Replication;
using OrleansLsn.Tracking;

namespace OrleansLsn.Hosting;

/// <summary>
/// Every engine (tracker, pump) the grains of this silo started. Grains stop their engines when they deactivate; this
/// is the backstop for a silo that stops without deactivating them (an ungraceful stop): disposing the silo's service
/// provider stops whatever is left, so no replica connection or slot stays held by a silo that is gone. It is also what
/// a silo's health endpoint reads: the trackers and pumps running here.
/// </summary>
public sealed class SiloEngines : IAsyncDisposable, ILifecycleParticipant<ISiloLifecycle>
{
    private readonly ConcurrentDictionary<IAsyncDisposable, byte> _engines = new();
    private int _disposed;
    private int _stopping;

    /// <summary>
    /// Whether the silo is shutting down. From then on a tracker grain ends its waits with
    /// <see cref="SiloUnavailableException"/>, so callers retry on another silo instead of holding up the shutdown.
    /// </summary>
    public bool IsStopping => Volatile.Read(ref _stopping) != 0;

    /// <summary>Engines currently running on this silo.</summary>
    public int Count => _engines.Count;

    /// <summary>The trackers running on this silo (one per region whose tracker grain is active here).</summary>
    public IReadOnlyList<LsnTracker> Trackers => [.. _engines.Keys.OfType<LsnTracker>()];

    /// <summary>The replication pumps running on this silo.</summary>
    public IReadOnlyList<ReplicationPump> Pumps => [.. _engines.Keys.OfType<ReplicationPump>()];

    internal void Add(IAsyncDisposable engine)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            throw new ObjectDisposedException(nameof(SiloEngines), "The silo is stopping.");
        }

        _engines.TryAdd(engine, 0);
    }

    internal async ValueTask RemoveAndDisposeAsync(IAsyncDisposable engine)
    {
        _engines.TryRemove(engine, out _);
        await engine.DisposeAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Participate(ISiloLifecycle lifecycle)
    {
        ArgumentNullException.ThrowIfNull(lifecycle);
        // The Active stage is the first to stop: trackers end their waits before Orleans deactivates the grains, which
        // would otherwise wait for every running RequestAndAwait to reach its timeout.
        lifecycle.Subscribe(nameof(SiloEngines), ServiceLifecycleStage.Active, _ => Task.CompletedTask, StopTrackersAsync);
    }

    private async Task StopTrackersAsync(CancellationToken cancellationToken)
    {
        Volatile.Write(ref _stopping, 1);
        await Task.WhenAll(Trackers.Select(t => t.DisposeAsync().AsTask())).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        IAsyncDisposable[] left = [.. _engines.Keys];
        _engines.Clear();
        await Task.WhenAll(left.Select(e => e.DisposeAsync().AsTask())).ConfigureAwait(false);
    }
}
