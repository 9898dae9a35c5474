using System.Diagnostics;
using System.Globalization;

namespace OrleansLsn.Bench.Replication;

/// <summary>A subscriber that timestamps the arrival of one awaited row id (the first column) at a time.</summary>
internal sealed class RowArrival
{
    private readonly object _lock = new();
    private long _expected = -1;
    private TaskCompletionSource<long>? _arrival;

    /// <summary>Awaits row <paramref name="id"/>: the task completes with the <see cref="Stopwatch"/> timestamp of its delivery.</summary>
    public Task<long> Expect(long id)
    {
        lock (_lock)
        {
            _expected = id;
            _arrival = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            return _arrival.Task;
        }
    }

    public Task OnChangesAsync(ChangeBatch batch)
    {
        long now = Stopwatch.GetTimestamp();
        foreach (RowChange change in batch.Changes)
        {
            if (change.NewValues?[0] is not { } text)
            {
                continue;
            }

            long id = long.Parse(text, CultureInfo.InvariantCulture);
            lock (_lock)
            {
                if (id == _expected)
                {
                    _arrival?.TrySetResult(now);
                }
            }
        }

        return Task.CompletedTask;
    }
}
