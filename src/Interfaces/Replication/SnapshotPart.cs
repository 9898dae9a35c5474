namespace OrleansLsn;

/// <summary>
/// Marks a <see cref="ChangeBatch"/> as part of a subscriber's initial snapshot
/// (<see cref="IReplicationGrain.SubscribeFromSnapshot"/>) rather than a transaction of the stream. A snapshot is a run
/// of batches, table after table, each with up to <see cref="SnapshotRequest.ChunkRows"/> rows as
/// <see cref="ChangeKind.Insert"/> changes (every published column's text, as the stream renders it), then one batch
/// with <see cref="IsComplete"/> and no rows. Stream batches follow.
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.SnapshotPart")]
public sealed record SnapshotPart
{
    /// <summary>The table the rows are of (<c>schema.table</c>); <see langword="null"/> on the completion marker.</summary>
    [Id(0)]
    public string? Table { get; init; }

    /// <summary>Rows of <see cref="Table"/> delivered before this batch: where the copy of the table stands.</summary>
    [Id(1)]
    public long RowsBefore { get; init; }

    /// <summary>Whether this is the table's last batch (an empty table has one, with no rows).</summary>
    [Id(2)]
    public bool IsLastOfTable { get; init; }

    /// <summary>Whether this is the completion marker: every table is copied, and stream batches follow.</summary>
    [Id(3)]
    public bool IsComplete { get; init; }

    /// <summary>
    /// The slot position the stream continues from: every transaction that committed before it is in the copy. Later
    /// transactions are in the copy or in the stream, as <see cref="Cut"/> decides.
    /// </summary>
    [Id(4)]
    public required Lsn ContinuesFrom { get; init; }

    /// <summary>The snapshot the copy was read in, as <c>pg_current_snapshot()</c> gives it (<c>xmin:xmax:xip,...</c>).</summary>
    [Id(5)]
    public required string Cut { get; init; }

    /// <summary>On the completion marker, the rows copied in all; otherwise 0.</summary>
    [Id(6)]
    public long TotalRows { get; init; }

    /// <summary>
    /// Whether the copy was read in the snapshot PostgreSQL exported when the pump created the slot
    /// (<c>CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT</c>): <see cref="ContinuesFrom"/> is then the slot's consistent
    /// point, every transaction before it is in the copy and every later one in the stream. Otherwise the copy was read in
    /// a snapshot of its own while the slot was already streaming, and <see cref="Cut"/> decides.
    /// </summary>
    [Id(7)]
    public bool AtSlotCreation { get; init; }
}
