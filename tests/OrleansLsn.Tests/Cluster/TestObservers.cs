using System.Collections.Concurrent;
using OrleansLsn.Tests.Replication;

namespace OrleansLsn.Tests.Cluster;

/// <summary>A client-side <see cref="ILsnObserver"/> that records every push and lets a test wait for one.</summary>
public sealed class RecordingLsnObserver : ILsnObserver
{
    private readonly object _lock = new();
    private readonly List<(string Region, Lsn Requested, Lsn Replay)> _replicated = new();
    private readonly List<(string Region, Lsn Replay)> _advanced = new();
    private TaskCompletionSource? _hang;

    public IReadOnlyList<(string Region, Lsn Requested, Lsn Replay)> Replicated
    {
        get
        {
            lock (_lock)
            {
                return _replicated.ToList();
            }
        }
    }

    public IReadOnlyList<(string Region, Lsn Replay)> Advanced
    {
        get
        {
            lock (_lock)
            {
                return _advanced.ToList();
            }
        }
    }

    public Lsn HighestAdvance => Advanced.Select(a => a.Replay).DefaultIfEmpty(Lsn.Invalid).Max();

    /// <summary>From now on every push records and then never completes (a client that stopped answering).</summary>
    public void HangForever()
    {
        lock (_lock)
        {
            _hang = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public void StopHanging() => _hang?.TrySetResult();

    public Task OnLsnReplicated(string region, Lsn requested, Lsn replay)
    {
        lock (_lock)
        {
            _replicated.Add((region, requested, replay));
            return _hang?.Task ?? Task.CompletedTask;
        }
    }

    public Task OnReplayAdvanced(string region, Lsn replay)
    {
        lock (_lock)
        {
            _advanced.Add((region, replay));
            return _hang?.Task ?? Task.CompletedTask;
        }
    }
}

/// <summary>A client-side <see cref="IChangeObserver"/> over a <see cref="BatchRecorder"/> (hold, release, fail).</summary>
public sealed class RecordingChangeObserver : IChangeObserver
{
    public BatchRecorder Recorder { get; } = new();

    public Task OnChanges(ChangeBatch batch) => Recorder.OnChangesAsync(batch, CancellationToken.None);
}

/// <summary>Client-side observer references that stay alive for the test (Orleans holds observers weakly).</summary>
public sealed class ObserverRefs(IClusterClient client) : IDisposable
{
    private readonly ConcurrentBag<Action> _deletes = new();
    private readonly ConcurrentBag<object> _keep = new();

    public T Create<T>(T observer)
        where T : class, IGrainObserver
    {
        _keep.Add(observer);
        T reference = client.CreateObjectReference<T>(observer);
        _deletes.Add(() => client.DeleteObjectReference<T>(reference));
        return reference;
    }

    public void Dispose()
    {
        foreach (Action delete in _deletes)
        {
            try
            {
                delete();
            }
            catch (InvalidOperationException)
            {
                // The client was killed by the test (ObjectDisposedException is one too).
            }
        }
    }
}
