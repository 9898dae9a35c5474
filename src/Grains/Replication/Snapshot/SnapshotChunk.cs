namespace OrleansLsn.Replication.Snapshot;

/// <summary>
/// Up to a chunk size of rows of one table, read in <see cref="Snapshot"/> by <see cref="TableSnapshotReader"/>.
/// </summary>
/// <param name="Snapshot">The snapshot every row of the read was taken in (the same instance on every chunk of one read).</param>
/// <param name="Relation">
/// The table and its columns, as pgoutput would describe it (<see cref="ChangeRelation.RelationId"/> is the table's OID).
/// </param>
/// <param name="Rows">
/// The rows: each value is PostgreSQL's text representation of the column (its output function, as in
/// <see cref="RowChange.NewValues"/>), in the order of <see cref="ChangeRelation.Columns"/>; SQL NULL is
/// <see langword="null"/>. Empty only for the single chunk of an empty table.
/// </param>
/// <param name="ExportedSnapshot">
/// The id from <c>pg_export_snapshot()</c> when the read was asked to export it (another session can then read in the
/// same snapshot with <c>SET TRANSACTION SNAPSHOT</c> while the read is under way); otherwise <see langword="null"/>.
/// </param>
internal sealed record SnapshotChunk(
    PgSnapshot Snapshot,
    ChangeRelation Relation,
    IReadOnlyList<IReadOnlyList<string?>> Rows,
    string? ExportedSnapshot);
