namespace OrleansLsn;

/// <summary>
/// Committed changes of one transaction, or one fragment of a large one, delivered in commit order. Delivery is at
/// least once: after a restart, batches past the last acknowledgement can arrive again, with the same
/// <see cref="CommitLsn"/> and <see cref="Fragment"/>, so (<see cref="CommitLsn"/>, <see cref="Fragment"/>) identifies a
/// batch for de-duplication.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.ChangeBatch")]
public sealed record ChangeBatch
{
    /// <summary>The replication slot the batch came from.</summary>
    [Id(0)]
    public required string Slot { get; init; }

    /// <summary>Position of the batch in the pump's stream since the pump started (1, 2, ...); not stable across restarts.</summary>
    [Id(1)]
    public required long Sequence { get; init; }

    /// <summary>The LSN of the transaction's commit record. Increases strictly from one transaction to the next.</summary>
    [Id(2)]
    public required Lsn CommitLsn { get; init; }

    /// <summary>
    /// The LSN just past the commit record: the position that is acknowledged to PostgreSQL once the last fragment is
    /// confirmed. Known only on the last fragment; <see cref="Lsn.Invalid"/> on the others.
    /// </summary>
    [Id(3)]
    public required Lsn EndLsn { get; init; }

    /// <summary>The transaction id.</summary>
    [Id(4)]
    public required uint Xid { get; init; }

    /// <summary>When the transaction committed (server clock).</summary>
    [Id(5)]
    public required DateTimeOffset CommitTime { get; init; }

    /// <summary>0 for the first (or only) fragment of the transaction, then 1, 2, ...</summary>
    [Id(6)]
    public required int Fragment { get; init; }

    /// <summary>Whether this is the transaction's last fragment (true for a transaction that fits in one batch).</summary>
    [Id(7)]
    public required bool IsLastFragment { get; init; }

    /// <summary>Index, within the transaction, of the first change in <see cref="Changes"/>.</summary>
    [Id(8)]
    public required long FirstChangeIndex { get; init; }

    /// <summary>The changes, in the order the transaction made them.</summary>
    [Id(9)]
    public required IReadOnlyList<RowChange> Changes { get; init; }

    /// <summary>
    /// Set on the batches of a subscriber's initial snapshot (<see cref="IReplicationGrain.SubscribeFromSnapshot"/>);
    /// <see langword="null"/> on stream batches. A snapshot batch is no transaction: its <see cref="CommitLsn"/> is the
    /// position the stream continues from, <see cref="Xid"/> is 0, <see cref="Sequence"/> and <see cref="Fragment"/>
    /// count the snapshot's batches from 1, and (<see cref="CommitLsn"/>, <see cref="Fragment"/>) does not identify it
    /// among stream batches.
    /// </summary>
    [Id(10)]
    public SnapshotPart? Snapshot { get; init; }
}
