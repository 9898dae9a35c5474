using System.Collections.Concurrent;

namespace OrleansLsn.Hosting;

/// <summary>
/// Every engine (tracker, pump) the grains of this silo started. Grains stop their engines when they deactivate; this
/// is the backstop for a silo that stops without deactivating them (an ungraceful stop): disposing the silo's service
/// provider stops whatever is left, so no replica connection or slot stays held by a silo that is gone.
/// </summary>
internal sealed class SiloEngines : IAsyncDisposable
{
    private readonly ConcurrentDictionary<IAsyncDisposable, byte> _engines = new();
    private int _disposed;

    /// <summary>Engines currently running on this silo.</summary>
    internal int Count => _engines.Count;

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
