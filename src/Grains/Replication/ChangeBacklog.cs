using System.Diagnostics;

namespace OrleansLsn.Replication;

/// <summary>
/// Batches read from the slot and not yet confirmed by every subscriber, in stream order, with one cursor per
/// subscriber. It decides three things: what each subscriber gets next, when the pump must stop reading (high water)
/// and may read again (low water), and how far the acknowledged position may move.
/// </summary>
/// <remarks>
/// Invariants, under <see cref="_lock"/>: entries hold sequence numbers <c>[_headSeq, _nextSeq)</c>, contiguous; every
/// cursor has <c>_headSeq - 1 &lt;= ConfirmedSeq &lt; _nextSeq</c>; an entry leaves only once every cursor confirmed it
/// (or, with no cursor, when acknowledging without subscribers is allowed); <see cref="_confirmedLsn"/> is the end LSN of
/// the last removed entry that completed a transaction, so it never passes an unconfirmed transaction.
/// </remarks>
internal sealed class ChangeBacklog
{
    private readonly object _lock = new();
    private readonly List<Cursor> _cursors = new();
    private readonly long _highBytes;
    private readonly long _lowBytes;
    private readonly int _highCount;
    private readonly int _lowCount;
    private readonly bool _acknowledgeWithoutSubscribers;
    private readonly Action<Lsn> _confirmed;

    private Entry[] _ring = new Entry[64];
    private int _headIndex;
    private int _count;
    private long _headSeq = 1;
    private long _nextSeq = 1;
    private long _bytes;
    private Lsn _confirmedLsn;
    private TaskCompletionSource? _appended;
    private TaskCompletionSource? _relief;

    internal ChangeBacklog(ReplicationPumpOptions options, Action<Lsn> confirmed)
    {
        _highBytes = options.HighWaterBytes;
        _lowBytes = options.LowWaterBytes;
        _highCount = options.HighWaterBatches;
        _lowCount = options.LowWaterBatches;
        _acknowledgeWithoutSubscribers = options.AcknowledgeWithoutSubscribers;
        _confirmed = confirmed;
    }

    /// <summary>One item in stream order: a batch, or (with <see cref="Batch"/> null) a transaction without published changes.</summary>
    internal readonly record struct Entry(long Seq, ChangeBatch? Batch, long Bytes, Lsn EndLsn);

    /// <summary>A subscriber's position: everything up to <see cref="ConfirmedSeq"/> is confirmed by it.</summary>
    internal sealed class Cursor
    {
        internal long ConfirmedSeq { get; set; }

        internal bool Removed { get; set; }
    }

    internal long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    internal int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    internal int Subscribers
    {
        get
        {
            lock (_lock)
            {
                return _cursors.Count;
            }
        }
    }

    /// <summary>Whether the pump is held by backpressure (set by <see cref="CheckHighWater"/>, cleared below low water).</summary>
    internal bool IsBackpressured
    {
        get
        {
            lock (_lock)
            {
                return _relief is not null;
            }
        }
    }

    /// <summary>The sequence number of the last appended entry (0 before the first).</summary>
    internal long LastAppendedSeq
    {
        get
        {
            lock (_lock)
            {
                return _nextSeq - 1;
            }
        }
    }

    internal Lsn ConfirmedLsn
    {
        get
        {
            lock (_lock)
            {
                return _confirmedLsn;
            }
        }
    }

    /// <summary>
    /// Whether everything appended so far is confirmed and acknowledging is allowed (someone subscribed, or
    /// acknowledging without subscribers is on): the condition for acknowledging keepalive positions.
    /// </summary>
    internal bool IsDrained(out long lastAppendedSeq)
    {
        lock (_lock)
        {
            lastAppendedSeq = _nextSeq - 1;
            return _count == 0 && (_cursors.Count > 0 || _acknowledgeWithoutSubscribers);
        }
    }

    /// <summary>Adds a batch (or a marker when <paramref name="batch"/> is null) and returns its sequence number.</summary>
    internal long Append(ChangeBatch? batch, long bytes, Lsn endLsn)
    {
        TaskCompletionSource? appended;
        TaskCompletionSource? relief;
        Lsn confirmed;
        long seq;
        lock (_lock)
        {
            if (_count == _ring.Length)
            {
                Grow();
            }

            seq = _nextSeq++;
            _ring[(_headIndex + _count) % _ring.Length] = new Entry(seq, batch, bytes, endLsn);
            _count++;
            _bytes += bytes;
            appended = _appended;
            _appended = null;
            confirmed = TrimLocked(out relief);
            AssertInvariants();
        }

        appended?.TrySetResult();
        relief?.TrySetResult();
        NotifyConfirmed(confirmed);
        return seq;
    }

    /// <summary>
    /// Called by the pump between messages. Returns <see langword="null"/> when it may read on, else a task that
    /// completes once the backlog is below the low-water marks.
    /// </summary>
    internal Task? CheckHighWater()
    {
        lock (_lock)
        {
            if (_relief is not null)
            {
                return _relief.Task;
            }

            if (_bytes < _highBytes && _count < _highCount)
            {
                return null;
            }

            _relief = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _relief.Task;
        }
    }

    internal Cursor AddCursor()
    {
        lock (_lock)
        {
            var cursor = new Cursor { ConfirmedSeq = _headSeq - 1 };
            _cursors.Add(cursor);
            AssertInvariants();
            return cursor;
        }
    }

    internal void RemoveCursor(Cursor cursor)
    {
        TaskCompletionSource? relief;
        Lsn confirmed;
        lock (_lock)
        {
            if (cursor.Removed)
            {
                return;
            }

            cursor.Removed = true;
            _cursors.Remove(cursor);
            confirmed = TrimLocked(out relief);
            AssertInvariants();
        }

        relief?.TrySetResult();
        NotifyConfirmed(confirmed);
    }

    /// <summary>Waits for the entry after the cursor's confirmed position and returns it.</summary>
    internal async ValueTask<Entry> NextAsync(Cursor cursor, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                long seq = cursor.ConfirmedSeq + 1;
                if (seq < _nextSeq)
                {
                    Debug.Assert(seq >= _headSeq, "A cursor's next entry is never trimmed before the cursor confirms it.");
                    return _ring[(_headIndex + (int)(seq - _headSeq)) % _ring.Length];
                }

                _appended ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _appended.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Records that the cursor's subscriber confirmed the entry <paramref name="seq"/> (and so all before it).</summary>
    internal void Confirm(Cursor cursor, long seq)
    {
        TaskCompletionSource? relief;
        Lsn confirmed;
        lock (_lock)
        {
            if (cursor.Removed || seq <= cursor.ConfirmedSeq)
            {
                return;
            }

            Debug.Assert(seq < _nextSeq, "Only appended entries can be confirmed.");
            cursor.ConfirmedSeq = seq;
            confirmed = TrimLocked(out relief);
            AssertInvariants();
        }

        relief?.TrySetResult();
        NotifyConfirmed(confirmed);
    }

    private Lsn TrimLocked(out TaskCompletionSource? relief)
    {
        long upTo;
        if (_cursors.Count == 0)
        {
            upTo = _acknowledgeWithoutSubscribers ? _nextSeq - 1 : _headSeq - 1;
        }
        else
        {
            upTo = long.MaxValue;
            foreach (Cursor c in _cursors)
            {
                upTo = Math.Min(upTo, c.ConfirmedSeq);
            }
        }

        Lsn before = _confirmedLsn;
        while (_count > 0 && _headSeq <= upTo)
        {
            ref Entry head = ref _ring[_headIndex];
            _bytes -= head.Bytes;
            if (head.EndLsn != Lsn.Invalid && head.EndLsn > _confirmedLsn)
            {
                _confirmedLsn = head.EndLsn;
            }

            head = default;
            _headIndex = (_headIndex + 1) % _ring.Length;
            _count--;
            _headSeq++;
        }

        relief = null;
        if (_relief is not null && _bytes < _lowBytes && _count < _lowCount)
        {
            relief = _relief;
            _relief = null;
        }

        return _confirmedLsn != before ? _confirmedLsn : Lsn.Invalid;
    }

    private void NotifyConfirmed(Lsn confirmed)
    {
        if (confirmed != Lsn.Invalid)
        {
            _confirmed(confirmed);
        }
    }

    private void Grow()
    {
        var bigger = new Entry[_ring.Length * 2];
        for (int i = 0; i < _count; i++)
        {
            bigger[i] = _ring[(_headIndex + i) % _ring.Length];
        }

        _ring = bigger;
        _headIndex = 0;
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_nextSeq - _headSeq == _count, "Entries are contiguous.");
        Debug.Assert(_bytes >= 0, "Byte count never goes negative.");
        Debug.Assert(_count > 0 || _bytes == 0, "An empty backlog holds no bytes.");
        foreach (Cursor c in _cursors)
        {
            Debug.Assert(c.ConfirmedSeq >= _headSeq - 1 && c.ConfirmedSeq < _nextSeq, "Cursors point into the backlog.");
        }
    }
}
