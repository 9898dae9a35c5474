namespace OrleansLsn.Bench.Snapshot;

/// <summary>What every snapshot scenario shares: the primary, the published table and the run's sizes.</summary>
/// <param name="Primary">Connection string of the primary.</param>
/// <param name="BinDirectory">The folder of the PostgreSQL binaries the benchmark uses (where <c>pg_dump</c> is looked for).</param>
/// <param name="Quick">Shorter run.</param>
/// <param name="Rows">Rows of the snapshot table.</param>
/// <param name="Runs">Runs of each throughput reader; the median is reported.</param>
/// <param name="TableBytes">The table's size on disk (<c>pg_table_size</c>), for the notes.</param>
internal sealed record SnapshotBenchContext(string Primary, string BinDirectory, bool Quick, int Rows, int Runs, long TableBytes);
