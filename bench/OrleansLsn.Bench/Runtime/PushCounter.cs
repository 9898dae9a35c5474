using System.Diagnostics;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// The client's observer object: counts the pushes of one round, checks each number arrives exactly once, counts
/// arrivals after a higher number (the client runs observer calls on the thread pool, so order is not kept), and
/// records when the last expected push arrived.
/// </summary>
internal sealed class PushCounter : IPushObserver
{
    private int[] _seen = [];
    private int _expected;
    private int _received;
    private long _duplicates;
    private long _outOfRange;
    private long _highest = -1;
    private long _reordered;
    private TaskCompletionSource<long> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Pushes received in this round.</summary>
    public int Received => Volatile.Read(ref _received);

    /// <summary>Numbers that arrived more than once in this round.</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>Numbers outside 0..expected-1.</summary>
    public long OutOfRange => Interlocked.Read(ref _outOfRange);

    /// <summary>Pushes that arrived after a push with a higher number.</summary>
    public long Reordered => Interlocked.Read(ref _reordered);

    /// <summary>Completes with the <see cref="Stopwatch"/> timestamp of the round's last push.</summary>
    public Task<long> AllReceived => _done.Task;

    /// <summary>Starts a round of <paramref name="count"/> pushes numbered 0..count-1.</summary>
    public void Expect(int count)
    {
        _seen = new int[count];
        _received = 0;
        _duplicates = 0;
        _outOfRange = 0;
        _highest = -1;
        _reordered = 0;
        _done = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _expected, count);
    }

    public Task OnPush(long number)
    {
        Count(number);
        return Task.CompletedTask;
    }

    public Task OnPushAwaited(long number)
    {
        Count(number);
        return Task.CompletedTask;
    }

    private void Count(long number)
    {
        long now = Stopwatch.GetTimestamp();
        int[] seen = _seen;
        if (number < 0 || number >= seen.Length)
        {
            Interlocked.Increment(ref _outOfRange);
            return;
        }

        if (Interlocked.Exchange(ref seen[number], 1) != 0)
        {
            Interlocked.Increment(ref _duplicates);
            return;
        }

        long highest = Volatile.Read(ref _highest);
        while (number > highest)
        {
            long previous = Interlocked.CompareExchange(ref _highest, number, highest);
            if (previous == highest)
            {
                break;
            }

            highest = previous;
        }

        if (number < highest)
        {
            Interlocked.Increment(ref _reordered);
        }

        if (Interlocked.Increment(ref _received) == Volatile.Read(ref _expected))
        {
            _done.TrySetResult(now);
        }
    }
}
