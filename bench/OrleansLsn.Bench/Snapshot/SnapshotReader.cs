using System.Diagnostics;

namespace OrleansLsn.Bench.Snapshot;

/// <summary>
/// A snapshot subscriber: touches every value of every row (sums the string lengths), counts the rows of the snapshot
/// batches and completes <see cref="Complete"/> when the completion marker arrives. With a delay, each snapshot batch
/// takes that long before it is confirmed (a slow observer).
/// </summary>
internal sealed class SnapshotReader
{
    private readonly TimeSpan _delay;
    private readonly TaskCompletionSource _complete = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _rows;
    private long _batches;
    private long _chars;
    private long _completedAt;
    private long _totalRows = -1;

    public SnapshotReader(TimeSpan delay = default)
    {
        _delay = delay;
    }

    /// <summary>Completes when the completion marker is delivered.</summary>
    public Task Complete => _complete.Task;

    /// <summary>Rows delivered in snapshot batches so far.</summary>
    public long Rows => Interlocked.Read(ref _rows);

    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Characters of every value read (so the values are really touched).</summary>
    public long Chars => Interlocked.Read(ref _chars);

    /// <summary>The marker's <c>TotalRows</c>, or -1 before it arrived.</summary>
    public long TotalRows => Interlocked.Read(ref _totalRows);

    /// <summary>The <see cref="Stopwatch"/> timestamp at which the marker arrived.</summary>
    public long CompletedAt => Interlocked.Read(ref _completedAt);

    public Task OnChangesAsync(ChangeBatch batch, CancellationToken cancellationToken)
    {
        if (batch.Snapshot is not { } part)
        {
            return Task.CompletedTask;
        }

        if (part.IsComplete)
        {
            Interlocked.Exchange(ref _completedAt, Stopwatch.GetTimestamp());
            Interlocked.Exchange(ref _totalRows, part.TotalRows);
            _complete.TrySetResult();
            return Task.CompletedTask;
        }

        long chars = 0;
        foreach (RowChange change in batch.Changes)
        {
            IReadOnlyList<string?> values = change.NewValues!;
            for (int i = 0; i < values.Count; i++)
            {
                chars += values[i]?.Length ?? 0;
            }
        }

        Interlocked.Add(ref _chars, chars);
        Interlocked.Add(ref _rows, batch.Changes.Count);
        Interlocked.Increment(ref _batches);
        return _delay > TimeSpan.Zero ? Task.Delay(_delay, cancellationToken) : Task.CompletedTask;
    }
}
