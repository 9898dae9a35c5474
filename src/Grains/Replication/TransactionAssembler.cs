using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;

namespace OrleansLsn.Replication;

/// <summary>
/// Turns pgoutput messages into <see cref="ChangeBatch"/>es: one per transaction, or bounded fragments of a large one.
/// Used only by the pump's socket loop. It outlives connections: after a reconnect the server replays from the last
/// acknowledgement, and the assembler drops what this process already put into the backlog (whole transactions, and
/// the fragments already cut from a transaction that was cut off), so subscribers see no duplicate within one process.
/// </summary>
internal sealed class TransactionAssembler
{
    // Rough managed sizes: a RowChange with its arrays, a string header, an array slot.
    private const long ChangeOverheadBytes = 96;
    private const long ValueOverheadBytes = 32;

    private readonly string _slot;
    private readonly int _maxChanges;
    private readonly long _maxBytes;
    private readonly ChangeBacklog _backlog;
    private readonly Dictionary<uint, ChangeRelation> _relations = new();

    private List<RowChange> _changes = new();
    private long _changesBytes;
    private long _sequence;

    // The transaction being read.
    private bool _inTransaction;
    private bool _skipTransaction;
    private uint _xid;
    private Lsn _commitLsn;
    private DateTimeOffset _commitTime;
    private long _changeIndex;
    private long _skipChanges;

    // What has reached the backlog: the last whole transaction, and the fragments of one cut off by a lost connection.
    private Lsn _lastCompletedCommitLsn;
    private Lsn _partialCommitLsn;
    private long _partialChanges;
    private int _partialFragments;

    internal TransactionAssembler(string slot, ReplicationPumpOptions options, ChangeBacklog backlog)
    {
        _slot = slot;
        _maxChanges = options.MaxBatchChanges;
        _maxBytes = options.MaxBatchBytes;
        _backlog = backlog;
    }

    /// <summary>Whether a transaction has begun and not committed yet.</summary>
    internal bool InTransaction => _inTransaction;

    /// <summary>Changes decoded (not skipped) since the pump started.</summary>
    internal long ChangesDecoded { get; private set; }

    /// <summary>The commit LSN of the last transaction fully handed to the backlog.</summary>
    internal Lsn LastCompletedCommitLsn => _lastCompletedCommitLsn;

    /// <summary>A new connection: relation ids must be learnt again, and a half-read transaction will be sent again.</summary>
    internal void ResetSession()
    {
        _relations.Clear();
        _inTransaction = false;
        _changes = new List<RowChange>();
        _changesBytes = 0;
    }

    /// <summary>
    /// Before a session that streams again for a snapshot subscriber (a rewind): transactions already handed to the
    /// backlog are handed again, whole, for it; the other subscribers skip what they had (<see cref="ChangeBacklog.Cursor.SkipBelow"/>).
    /// </summary>
    internal void ForgetAppended()
    {
        _lastCompletedCommitLsn = Lsn.Invalid;
        _partialCommitLsn = Lsn.Invalid;
        _partialChanges = 0;
        _partialFragments = 0;
    }

    internal void Begin(uint xid, Lsn commitLsn, DateTimeOffset commitTime)
    {
        _inTransaction = true;
        _xid = xid;
        _commitLsn = commitLsn;
        _commitTime = commitTime;
        _changeIndex = 0;
        _changes = new List<RowChange>();
        _changesBytes = 0;
        _skipTransaction = _lastCompletedCommitLsn != Lsn.Invalid && commitLsn <= _lastCompletedCommitLsn;
        if (_skipTransaction)
        {
            // A replayed transaction that is already in the backlog. It must not touch the record of a transaction
            // that was cut off: that one may come right after it.
            _skipChanges = 0;
        }
        else if (commitLsn == _partialCommitLsn)
        {
            _skipChanges = _partialChanges;
        }
        else
        {
            _skipChanges = 0;
            _partialCommitLsn = commitLsn;
            _partialChanges = 0;
            _partialFragments = 0;
        }
    }

    internal void Relation(RelationMessage message) => _relations[message.RelationId] = ToRelation(message);

    internal async ValueTask InsertAsync(InsertMessage message)
    {
        if (!NextChangeWanted())
        {
            return;
        }

        (string?[] values, List<int>? toast, long bytes) = await ReadTupleAsync(message.NewRow).ConfigureAwait(false);
        Add(new RowChange(ChangeKind.Insert, RelationOf(message.Relation), values, null, false, toast), bytes);
    }

    internal async ValueTask UpdateAsync(UpdateMessage message)
    {
        if (!NextChangeWanted())
        {
            return;
        }

        // The old tuple precedes the new one on the wire and must be read first.
        string?[]? old = null;
        bool keyOnly = false;
        long oldBytes = 0;
        switch (message)
        {
            case FullUpdateMessage full:
                (old, _, oldBytes) = await ReadTupleAsync(full.OldRow).ConfigureAwait(false);
                break;
            case IndexUpdateMessage index:
                (old, _, oldBytes) = await ReadTupleAsync(index.Key).ConfigureAwait(false);
                keyOnly = true;
                break;
        }

        (string?[] values, List<int>? toast, long bytes) = await ReadTupleAsync(message.NewRow).ConfigureAwait(false);
        Add(new RowChange(ChangeKind.Update, RelationOf(message.Relation), values, old, keyOnly, toast), bytes + oldBytes);
    }

    internal async ValueTask DeleteAsync(DeleteMessage message)
    {
        if (!NextChangeWanted())
        {
            return;
        }

        string?[]? old = null;
        bool keyOnly = false;
        long bytes = 0;
        switch (message)
        {
            case FullDeleteMessage full:
                (old, _, bytes) = await ReadTupleAsync(full.OldRow).ConfigureAwait(false);
                break;
            case KeyDeleteMessage key:
                (old, _, bytes) = await ReadTupleAsync(key.Key).ConfigureAwait(false);
                keyOnly = true;
                break;
        }

        Add(new RowChange(ChangeKind.Delete, RelationOf(message.Relation), null, old, keyOnly), bytes);
    }

    internal void Truncate(TruncateMessage message)
    {
        foreach (RelationMessage relation in message.Relations)
        {
            if (NextChangeWanted())
            {
                Add(new RowChange(ChangeKind.Truncate, RelationOf(relation), null), 0);
            }
        }
    }

    /// <summary>Ends the transaction: hands its last fragment (or, without published changes, a marker) to the backlog.</summary>
    internal void Commit(Lsn commitLsn, Lsn endLsn)
    {
        _inTransaction = false;
        if (_skipTransaction)
        {
            return;
        }

        // With earlier fragments the last one is sent even if empty (every change went out before), to close the transaction.
        if (_changes.Count > 0 || _partialFragments > 0)
        {
            Flush(isLast: true, endLsn);
        }
        else
        {
            _backlog.Append(null, 0, endLsn);
        }

        _lastCompletedCommitLsn = commitLsn;
        _partialCommitLsn = Lsn.Invalid;
        _partialChanges = 0;
        _partialFragments = 0;
    }

    private bool NextChangeWanted()
    {
        _changeIndex++;
        return !_skipTransaction && _changeIndex > _skipChanges;
    }

    private void Add(RowChange change, long valueBytes)
    {
        // Cut the fragment before it would exceed a limit, so that the last fragment is never empty.
        long bytes = ChangeOverheadBytes + valueBytes;
        if (_changes.Count > 0 && (_changes.Count >= _maxChanges || _changesBytes + bytes > _maxBytes))
        {
            Flush(isLast: false, Lsn.Invalid);
        }

        _changes.Add(change);
        _changesBytes += bytes;
        ChangesDecoded++;
    }

    private void Flush(bool isLast, Lsn endLsn)
    {
        var batch = new ChangeBatch
        {
            Slot = _slot,
            Sequence = ++_sequence,
            CommitLsn = _commitLsn,
            EndLsn = isLast ? endLsn : Lsn.Invalid,
            Xid = _xid,
            CommitTime = _commitTime,
            Fragment = _partialFragments,
            IsLastFragment = isLast,
            FirstChangeIndex = _partialChanges,
            Changes = _changes,
        };
        _backlog.Append(batch, _changesBytes + ChangeOverheadBytes, batch.EndLsn);
        _partialFragments++;
        _partialChanges += _changes.Count;
        _changes = new List<RowChange>(Math.Min(_maxChanges, 64));
        _changesBytes = 0;
    }

    private ChangeRelation RelationOf(RelationMessage message) =>
        _relations.TryGetValue(message.RelationId, out ChangeRelation? relation)
            ? relation
            : _relations[message.RelationId] = ToRelation(message);

    private static ChangeRelation ToRelation(RelationMessage message)
    {
        var columns = new ChangeColumn[message.Columns.Count];
        for (int i = 0; i < columns.Length; i++)
        {
            RelationMessage.Column column = message.Columns[i];
            columns[i] = new ChangeColumn(
                column.ColumnName,
                column.DataTypeId,
                (column.Flags & RelationMessage.Column.ColumnFlags.PartOfKey) != 0);
        }

        return new ChangeRelation(message.RelationId, message.Namespace, message.RelationName, columns);
    }

    private static async ValueTask<(string?[] Values, List<int>? UnchangedToast, long Bytes)> ReadTupleAsync(ReplicationTuple tuple)
    {
        var values = new string?[tuple.NumColumns];
        List<int>? toast = null;
        long bytes = 24 + (8L * values.Length);
        int i = 0;
        await foreach (ReplicationValue value in tuple.ConfigureAwait(false))
        {
            if (value.IsUnchangedToastedValue)
            {
                (toast ??= new List<int>()).Add(i);
            }
            else if (!value.IsDBNull)
            {
                string text = await value.Get<string>().ConfigureAwait(false);
                values[i] = text;
                bytes += ValueOverheadBytes + (2L * text.Length);
            }

            i++;
        }

        return (values, toast, bytes);
    }
}
