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
/// <para>
/// A subscriber taking a snapshot holds a cursor that is not <see cref="CursorState.Active"/>: parked while it copies,
/// it retains no entry, only a slot position (<see cref="Cursor.HoldLsn"/>) that what is reported as confirmed never
/// passes; pending once the copy is done, it becomes active at the start of the pump's next session
/// (<see cref="StartSession"/>), which streams again from that position; active, it keeps holding until it has
/// confirmed the stream past everything the others confirmed meanwhile. Entries it gets a second time this way, and
/// that any cursor gets again after a reconnect, are skipped by <see cref="Cursor.SkipBelow"/>.
/// </para>
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
    private Lsn _reportedLsn;
    private int _holds;
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

    /// <summary>Where a cursor stands in the stream.</summary>
    internal enum CursorState
    {
        /// <summary>Gets the entries after <see cref="Cursor.ConfirmedSeq"/>.</summary>
        Active,

        /// <summary>Its subscriber copies a snapshot: it holds the slot position, no entry.</summary>
        Parked,

        /// <summary>The copy is done: it becomes active at the start of the next session.</summary>
        Pending,
    }

    /// <summary>A subscriber's position: everything up to <see cref="ConfirmedSeq"/> is confirmed by it.</summary>
    internal sealed class Cursor
    {
        internal long ConfirmedSeq { get; set; }

        internal bool Removed { get; set; }

        internal CursorState State { get; set; }

        /// <summary>A slot position the confirmed position must not pass for this cursor's sake, or <see cref="Lsn.Invalid"/>.</summary>
        internal Lsn HoldLsn { get; set; }

        /// <summary>
        /// Batches of transactions whose commit LSN is below this were delivered to (and confirmed by) this cursor's
        /// subscriber, or were in its snapshot or before it: they are skipped if the stream sends them again. Read and
        /// written by the cursor's delivery loop only.
        /// </summary>
        internal Lsn SkipBelow { get; set; }

        /// <summary>The transaction (commit LSN) of the last fragment delivered that was not its last, with <see cref="PartialFragment"/>.</summary>
        internal Lsn PartialCommitLsn { get; set; }

        /// <summary>That fragment's number: fragments up to it of that transaction are skipped if they come again.</summary>
        internal int PartialFragment { get; set; } = -1;

        /// <summary>Completes when a pending cursor becomes active (or is removed).</summary>
        internal TaskCompletionSource? Activated { get; set; }

        /// <summary>For a parked cursor, the last sequence number appended when it parked on an empty backlog; else -1.</summary>
        internal long ParkedAtSeq { get; set; } = -1;

        /// <summary>
        /// Whether the cursor only holds a position for a subscriber that may come (the snapshot exported at slot
        /// creation): it is no subscriber, and it neither keeps nor drops entries.
        /// </summary>
        internal bool HoldOnly { get; init; }
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
                return SubscriberCountLocked();
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
            return _count == 0 && _holds == 0 && (_cursors.Count > 0 || _acknowledgeWithoutSubscribers);
        }
    }

    /// <summary>The lowest position a cursor holds, or <see langword="null"/> when none holds one.</summary>
    internal Lsn? LowestHold
    {
        get
        {
            lock (_lock)
            {
                return LowestHoldLocked();
            }
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
            // Whatever was trimmed before it came was committed before it came: not promised to it.
            var cursor = new Cursor { ConfirmedSeq = _headSeq - 1, SkipBelow = _confirmedLsn };
            _cursors.Add(cursor);
            AssertInvariants();
            return cursor;
        }
    }

    /// <summary>
    /// Adds a parked cursor holding <paramref name="hold"/>: the position the pump would stream from now, which the
    /// caller reads under the pump's flush lock so that the flushed position cannot pass it meanwhile.
    /// </summary>
    internal Cursor AddParkedCursor(Lsn hold)
    {
        lock (_lock)
        {
            var cursor = new Cursor
            {
                ConfirmedSeq = _headSeq - 1,
                State = CursorState.Parked,
                HoldLsn = hold,
                SkipBelow = hold,
                ParkedAtSeq = _count == 0 ? _nextSeq - 1 : -1,
            };
            _cursors.Add(cursor);
            _holds++;
            AssertInvariants();
            return cursor;
        }
    }

    /// <summary>
    /// Adds a position hold that is no subscriber (<see cref="Cursor.HoldOnly"/>): what is acknowledged never passes
    /// <paramref name="hold"/> until it is removed. For the snapshot exported when the slot was created, kept for the
    /// first snapshot subscriber.
    /// </summary>
    internal Cursor AddHold(Lsn hold)
    {
        lock (_lock)
        {
            var cursor = new Cursor { ConfirmedSeq = _headSeq - 1, State = CursorState.Parked, HoldLsn = hold, SkipBelow = hold, HoldOnly = true };
            _cursors.Add(cursor);
            _holds++;
            AssertInvariants();
            return cursor;
        }
    }

    /// <summary>
    /// Ends a parked cursor's copy. Returns <see langword="true"/> when it is active at once (nothing was read from the
    /// slot while it was parked, so the stream goes on from its hold), or <see langword="false"/> when it is pending: the
    /// pump must start a new session, streaming again from the flushed position, which never passed the hold.
    /// </summary>
    internal bool Unpark(Cursor cursor)
    {
        lock (_lock)
        {
            if (cursor.Removed || cursor.State != CursorState.Parked)
            {
                return true;
            }

            if (cursor.ParkedAtSeq == _nextSeq - 1 && _count == 0)
            {
                cursor.State = CursorState.Active;
                cursor.ConfirmedSeq = _nextSeq - 1;
                ReleaseHoldIfCaughtUpLocked(cursor);
                AssertInvariants();
                return true;
            }

            cursor.State = CursorState.Pending;
            cursor.Activated = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return false;
        }
    }

    /// <summary>
    /// Called by the pump before it starts streaming in a new session: pending cursors start at the session's first
    /// entry. Returns whether there were any (the session then streams again what earlier ones did, for them).
    /// </summary>
    internal bool StartSession()
    {
        List<TaskCompletionSource>? activated = null;
        lock (_lock)
        {
            foreach (Cursor c in _cursors)
            {
                if (c.State == CursorState.Pending)
                {
                    c.State = CursorState.Active;
                    c.ConfirmedSeq = _nextSeq - 1;
                    (activated ??= new()).Add(c.Activated!);
                    c.Activated = null;
                }
            }

            AssertInvariants();
        }

        activated?.ForEach(a => a.TrySetResult());
        return activated is not null;
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
            if (cursor.HoldLsn != Lsn.Invalid)
            {
                cursor.HoldLsn = Lsn.Invalid;
                _holds--;
            }

            cursor.Activated?.TrySetResult();
            cursor.Activated = null;
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
                if (cursor.State != CursorState.Active && !cursor.Removed)
                {
                    wait = cursor.Activated?.Task ?? throw new InvalidOperationException("A parked cursor has no next entry: unpark it first.");
                    goto Wait;
                }

                long seq = cursor.ConfirmedSeq + 1;
                if (seq < _nextSeq)
                {
                    Debug.Assert(seq >= _headSeq, "A cursor's next entry is never trimmed before the cursor confirms it.");
                    return _ring[(_headIndex + (int)(seq - _headSeq)) % _ring.Length];
                }

                _appended ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _appended.Task;
            }

        Wait:
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
            if (cursor.HoldLsn != Lsn.Invalid)
            {
                Lsn end = _ring[(_headIndex + (int)(seq - _headSeq)) % _ring.Length].EndLsn;
                if (end > cursor.HoldLsn)
                {
                    cursor.HoldLsn = end;
                }
            }

            cursor.ConfirmedSeq = seq;
            if (cursor.HoldLsn != Lsn.Invalid)
            {
                ReleaseHoldIfCaughtUpLocked(cursor);
            }

            confirmed = TrimLocked(out relief);
            AssertInvariants();
        }

        relief?.TrySetResult();
        NotifyConfirmed(confirmed);
    }

    /// <summary>
    /// An active cursor stops holding once it confirmed as far as every entry trimmed: from then on its confirmations
    /// hold the trim, and so the confirmed position, as any cursor's do.
    /// </summary>
    private void ReleaseHoldIfCaughtUpLocked(Cursor cursor)
    {
        if (cursor.State == CursorState.Active && cursor.HoldLsn >= _confirmedLsn)
        {
            cursor.HoldLsn = Lsn.Invalid;
            _holds--;
        }
    }

    private int SubscriberCountLocked()
    {
        int count = 0;
        foreach (Cursor c in _cursors)
        {
            if (!c.HoldOnly)
            {
                count++;
            }
        }

        return count;
    }

    private Lsn? LowestHoldLocked()
    {
        if (_holds == 0)
        {
            return null;
        }

        Lsn lowest = new(ulong.MaxValue);
        foreach (Cursor c in _cursors)
        {
            if (c.HoldLsn != Lsn.Invalid && c.HoldLsn < lowest)
            {
                lowest = c.HoldLsn;
            }
        }

        return lowest;
    }

    private Lsn TrimLocked(out TaskCompletionSource? relief)
    {
        long upTo = long.MaxValue;
        bool anyActive = false;
        foreach (Cursor c in _cursors)
        {
            // A parked or pending cursor needs no entry: it will get the stream again from its hold.
            if (c.State == CursorState.Active)
            {
                anyActive = true;
                upTo = Math.Min(upTo, c.ConfirmedSeq);
            }
        }

        if (!anyActive)
        {
            // A parked subscriber gets the stream again from its hold; with none at all the entries wait for the first.
            upTo = _acknowledgeWithoutSubscribers || SubscriberCountLocked() > 0 ? _nextSeq - 1 : _headSeq - 1;
        }

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

        // What may be reported: the confirmed position, but never past a hold.
        Lsn report = _confirmedLsn;
        if (LowestHoldLocked() is Lsn hold && hold < report)
        {
            report = hold;
        }

        if (report > _reportedLsn)
        {
            _reportedLsn = report;
            return report;
        }

        return Lsn.Invalid;
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
            Debug.Assert(c.State != CursorState.Active || (c.ConfirmedSeq >= _headSeq - 1 && c.ConfirmedSeq < _nextSeq), "Active cursors point into the backlog.");
        }

        Debug.Assert(_holds == _cursors.Count(c => c.HoldLsn != Lsn.Invalid), "Holds are counted.");
    }
}
