using System.Globalization;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// Which row ids (1..capacity, the first column) a subscriber has received, allocated up front so that counting costs no
/// memory later. Written by one subscription (one batch at a time), read from any thread.
/// </summary>
internal sealed class IdTally
{
    private readonly bool[] _seen;
    private long _distinct;
    private long _duplicates;
    private long _outOfRange;

    public IdTally(int capacity)
    {
        _seen = new bool[capacity + 1];
    }

    public int Capacity => _seen.Length - 1;

    public long Distinct => Volatile.Read(ref _distinct);

    /// <summary>Rows received again (delivery is at least once).</summary>
    public long Duplicates => Volatile.Read(ref _duplicates);

    /// <summary>Rows whose id is not in 1..capacity (none are written).</summary>
    public long OutOfRange => Volatile.Read(ref _outOfRange);

    /// <summary>Every row received, duplicates included.</summary>
    public long Received => Distinct + Duplicates + OutOfRange;

    public Task OnChangesAsync(ChangeBatch batch)
    {
        foreach (RowChange change in batch.Changes)
        {
            long id = change.NewValues?[0] is { } text ? long.Parse(text, CultureInfo.InvariantCulture) : -1;
            if (id < 1 || id >= _seen.Length)
            {
                Interlocked.Increment(ref _outOfRange);
            }
            else if (_seen[id])
            {
                Interlocked.Increment(ref _duplicates);
            }
            else
            {
                _seen[id] = true;
                Interlocked.Increment(ref _distinct);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>The first id in 1..<paramref name="upTo"/> not received, or <see langword="null"/>.</summary>
    public long? FirstMissing(long upTo)
    {
        for (long id = 1; id <= upTo && id < _seen.Length; id++)
        {
            if (!Volatile.Read(ref _seen[id]))
            {
                return id;
            }
        }

        return upTo >= _seen.Length ? _seen.Length : null;
    }
}
