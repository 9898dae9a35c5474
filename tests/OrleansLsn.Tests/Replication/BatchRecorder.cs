namespace OrleansLsn.Tests.Replication;

/// <summary>
/// A subscriber that records what it gets. By default it confirms at once; <see cref="Hold"/> makes it wait for
/// <see cref="Release"/>, and <see cref="FailWith"/> makes it throw.
/// </summary>
public sealed class BatchRecorder
{
    private readonly object _lock = new();
    private readonly List<ChangeBatch> _received = new();
    private readonly List<(ChangeBatch Batch, long ConfirmedAt)> _confirmed = new();
    private TaskCompletionSource? _gate;
    private Func<ChangeBatch, Exception?>? _failure;
    private long _calls;

    /// <summary>Every call, in order, including repeated deliveries after a failure.</summary>
    public IReadOnlyList<ChangeBatch> Received
    {
        get
        {
            lock (_lock)
            {
                return _received.ToList();
            }
        }
    }

    /// <summary>Batches confirmed, in order, with the <see cref="System.Diagnostics.Stopwatch"/> timestamp of confirmation.</summary>
    public IReadOnlyList<(ChangeBatch Batch, long ConfirmedAt)> Confirmed
    {
        get
        {
            lock (_lock)
            {
                return _confirmed.ToList();
            }
        }
    }

    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Rows of the confirmed batches, in order.</summary>
    public IEnumerable<RowChange> ConfirmedRows => Confirmed.SelectMany(c => c.Batch.Changes);

    public void Hold()
    {
        lock (_lock)
        {
            _gate ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public void Release()
    {
        TaskCompletionSource? gate;
        lock (_lock)
        {
            gate = _gate;
            _gate = null;
        }

        gate?.TrySetResult();
    }

    public void FailWith(Func<ChangeBatch, Exception?>? failure) => Volatile.Write(ref _failure, failure);

    public async Task OnChangesAsync(ChangeBatch batch, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        Task? gate;
        lock (_lock)
        {
            _received.Add(batch);
            gate = _gate?.Task;
        }

        Exception? failure = Volatile.Read(ref _failure)?.Invoke(batch);
        if (failure is not null)
        {
            throw failure;
        }

        if (gate is not null)
        {
            await gate.WaitAsync(cancellationToken);
        }

        lock (_lock)
        {
            _confirmed.Add((batch, System.Diagnostics.Stopwatch.GetTimestamp()));
        }
    }
}
