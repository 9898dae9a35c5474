using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Bench.Replication;
using OrleansLsn.Replication;

namespace OrleansLsn.Bench.Snapshot;

/// <summary>
/// Snapshot throughput: the pump's <see cref="ReplicationPump.SubscribeFromSnapshotAsync"/> copying the table
/// (in-process, chunks of <see cref="SnapshotTable.ChunkRows"/> rows, a subscriber that reads every value and confirms at
/// once) against <c>COPY ... TO STDOUT</c> read by Npgsql (the anchor) and <c>pg_dump --data-only</c> (second anchor).
/// Runs go one at a time, the order rotating every run, and each reader's median is reported.
/// </summary>
internal static class SnapshotThroughputScenario
{
    private const string SlotPrefix = "bench_snapshot_tp_";
    private const string PumpApplication = "bench-pump-snapshot";

    /// <summary>The goal: the snapshot reads at least this fraction of COPY's rows per second.</summary>
    private const double GoalRatio = 0.7;

    private enum Reader
    {
        Copy,
        PgDump,
        Snapshot,
    }

    public static async Task RunAsync(SnapshotBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        string[] slots = [.. Enumerable.Range(0, context.Runs + 1).Select(SlotName)];
        await using var admin = new NpgsqlConnection(context.Primary);
        await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ReplicationSql.DropAsync(admin, slots, [], [], cancellationToken).ConfigureAwait(false);
        try
        {
            TimeSpan warmup = await WarmUpAsync(context, admin, cancellationToken).ConfigureAwait(false);
            (PgDump? pgDump, string? pgDumpMissing) = PgDump.Find(context.BinDirectory, context.Primary);
            Reader[] readers = pgDump is null ? [Reader.Copy, Reader.Snapshot] : [Reader.Copy, Reader.PgDump, Reader.Snapshot];

            // Generous: a million rows take a few seconds with every reader here.
            TimeSpan timeout = TimeSpan.FromSeconds(60 + (context.Rows / 10_000));
            var runs = readers.ToDictionary(r => r, _ => new List<double>());
            for (int run = 1; run <= context.Runs; run++)
            {
                for (int k = 0; k < readers.Length; k++)
                {
                    // Rotate which reader goes first, so that none always reads right after the same one.
                    Reader reader = readers[(run - 1 + k) % readers.Length];
                    TimeSpan elapsed = reader switch
                    {
                        Reader.Copy => await RunCopyAsync(context.Primary, SnapshotTable.Table, context.Rows, cancellationToken).ConfigureAwait(false),
                        Reader.PgDump => await pgDump!.DumpToDevNullAsync(SnapshotTable.Table, timeout, cancellationToken).ConfigureAwait(false),
                        _ => await RunSnapshotAsync(context.Primary, admin, SlotName(run), SnapshotTable.Table, context.Rows, timeout, cancellationToken)
                            .ConfigureAwait(false),
                    };
                    runs[reader].Add(elapsed.TotalSeconds);
                }
            }

            Record(report, context, runs, pgDump, pgDumpMissing, warmup);
        }
        finally
        {
            await ReplicationSql.DropAsync(admin, slots, [], [], CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static string SlotName(int run) => SlotPrefix + run.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Reads the small warm-up table once with COPY and once with a snapshot (run 0, not reported), so that the measured
    /// runs use jitted code rather than the first tier.
    /// </summary>
    private static async Task<TimeSpan> WarmUpAsync(SnapshotBenchContext context, NpgsqlConnection admin, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        _ = await RunCopyAsync(context.Primary, SnapshotTable.WarmupTable, SnapshotTable.WarmupRows, cancellationToken).ConfigureAwait(false);
        _ = await RunSnapshotAsync(context.Primary, admin, SlotName(0), SnapshotTable.WarmupTable, SnapshotTable.WarmupRows, TimeSpan.FromSeconds(60), cancellationToken)
            .ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(start);
    }

    private static async Task<TimeSpan> RunCopyAsync(string primary, string table, long expected, CancellationToken cancellationToken)
    {
        (TimeSpan elapsed, long rows, _) = await CopyExport.ReadAllAsync(primary, table, cancellationToken).ConfigureAwait(false);
        return rows == expected
            ? elapsed
            : throw new InvalidOperationException($"COPY of {table} returned {rows} rows, expected {expected}.");
    }

    /// <summary>
    /// Copies <paramref name="table"/> through a new pump on its own slot and returns the time from
    /// <see cref="ReplicationPump.SubscribeFromSnapshotAsync"/> until the completion marker was delivered.
    /// </summary>
    /// <exception cref="InvalidOperationException">The marker's total or the rows delivered are not <paramref name="expected"/>.</exception>
    private static async Task<TimeSpan> RunSnapshotAsync(
        string primary, NpgsqlConnection admin, string slot, string table, long expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await ReplicationSql.CreateSlotAsync(admin, slot, cancellationToken).ConfigureAwait(false);
        try
        {
            var reader = new SnapshotReader();
            long start;
            await using (ReplicationPump pump = SnapshotTable.NewPump(primary, slot, PumpApplication))
            {
                pump.Start();
                await pump.WaitForSlotAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
                var request = new SnapshotRequest { Tables = [SnapshotTable.Qualified(table)], ChunkRows = SnapshotTable.ChunkRows };
                start = Stopwatch.GetTimestamp();
                await using ReplicationSubscription subscription = await pump
                    .SubscribeFromSnapshotAsync(reader.OnChangesAsync, "snapshot-reader", request, cancellationToken: cancellationToken).ConfigureAwait(false);
                await PumpWait.ForAsync(pump, reader.Complete, timeout, $"the snapshot of {table} on slot {slot}", cancellationToken).ConfigureAwait(false);
            }

            if (reader.TotalRows != expected || reader.Rows != expected)
            {
                throw new InvalidOperationException(
                    $"The snapshot of {table} reported {reader.TotalRows} rows in all and delivered {reader.Rows}; expected exactly {expected}.");
            }

            return Stopwatch.GetElapsedTime(start, reader.CompletedAt);
        }
        finally
        {
            await ReplicationSql.DropAsync(admin, [slot], [], [], CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static void Record(
        BenchReport report, SnapshotBenchContext context, Dictionary<Reader, List<double>> runs, PgDump? pgDump, string? pgDumpMissing, TimeSpan warmup)
    {
        // Median by the nearest rank, the same statistic for every reader.
        static double Median(IEnumerable<double> values) => new Percentiles(values).P50;
        double rows = context.Rows;
        double copy = Median(runs[Reader.Copy]);
        double snapshot = Median(runs[Reader.Snapshot]);
        double copyRate = rows / copy;
        double snapshotRate = rows / snapshot;
        double ratio = snapshotRate / copyRate;
        report.Set("copy_rows_per_sec", copyRate);
        double? dumpRate = null;
        if (pgDump is not null)
        {
            double dump = Median(runs[Reader.PgDump]);
            dumpRate = rows / dump;
            report.Set("pg_dump_rows_per_sec", dumpRate.Value);
            report.Set("pg_dump_s", dump);
            report.Set("pg_dump_runs_s", Indexed(runs[Reader.PgDump]));
        }
        else
        {
            report.Values["pg_dump_rows_per_sec"] = null;
            report.SetText("pg_dump_not_measured", pgDumpMissing!);
        }

        report.Set("snapshot_rows_per_sec", snapshotRate);
        report.Set("snapshot_vs_copy", ratio);
        if (dumpRate is { } d)
        {
            report.Set("snapshot_vs_pg_dump", snapshotRate / d);
        }

        report.Set("throughput_rows", rows);
        report.Set("throughput_runs", context.Runs);
        report.Set("table_mb", context.TableBytes / (1024.0 * 1024.0));
        report.Set("copy_s", copy);
        report.Set("snapshot_s", snapshot);
        report.Set("copy_runs_s", Indexed(runs[Reader.Copy]));
        report.Set("snapshot_runs_s", Indexed(runs[Reader.Snapshot]));

        report.AddRow(new ResultRow(
            $"Snapshot, {Format.Count(rows)} rows, pump in-process (median of {context.Runs})",
            Format.PerSecond(snapshotRate),
            $"COPY (Npgsql text export) {Format.PerSecond(copyRate)}",
            Format.Ratio(snapshotRate, copyRate),
            $"≥ {Format.Number(GoalRatio, "0.0")}× COPY",
            ratio >= GoalRatio,
            "snapshot_vs_copy"));
        report.AddRow(new ResultRow(
            "Snapshot vs pg_dump --data-only (reference)",
            Format.PerSecond(snapshotRate),
            dumpRate is { } r ? $"pg_dump {Format.PerSecond(r)}" : $"pg_dump not measured: {pgDumpMissing}",
            dumpRate is { } r2 ? Format.Ratio(snapshotRate, r2) : "—",
            "—",
            null));
        report.AddRow(new ResultRow(
            "Time to read the table (median)",
            Format.Number(snapshot, "0.00") + " s",
            $"COPY {Format.Number(copy, "0.00")} s" + (pgDump is null ? string.Empty : $", pg_dump {Format.Number(Median(runs[Reader.PgDump]), "0.00")} s"),
            Format.Ratio(snapshot, copy),
            "—",
            null));

        report.Note(
            $"Snapshot throughput: a table of {Format.Count(rows)} rows (id bigint primary key, a text of 64 chars, b int, c timestamptz, " +
            $"d numeric; ~100 bytes of text per row, {Format.Number(context.TableBytes / (1024.0 * 1024.0), "0")} MB on disk, vacuumed), read " +
            $"{context.Runs} time(s) by each reader, one at a time, the order rotating every run; the figure is each reader's median (nearest rank). " +
            "Snapshot: a new ReplicationPump on its own slot (created before, dropped after), started and WaitForSlotAsync, then timed from the " +
            $"SubscribeFromSnapshotAsync call (ChunkRows {SnapshotTable.ChunkRows}) until the completion marker was delivered; the subscriber " +
            "sums the length of every value of every row and confirms at once; the run fails unless TotalRows and the rows delivered equal the " +
            "table's rows. COPY: a new connection, COPY (SELECT * FROM t) TO STDOUT read line by line with Npgsql's BeginTextExport " +
            "(timed from opening the connection to the last line). pg_dump: " +
            (pgDump is null ? $"not measured ({pgDumpMissing})" : $"{pgDump.Path} --data-only -t t -f /dev/null, timed from process start to exit") +
            $". Before the measured runs, COPY and a snapshot each read a {Format.Count(SnapshotTable.WarmupRows)}-row table of the same shape once, " +
            $"unmeasured, so that their code was jitted ({Format.Number(warmup.TotalSeconds, "0.0")} s).");
        report.Note(
            "This measures the pump in-process: the grain path (IReplicationGrain.SubscribeFromSnapshot) adds an Orleans observer call per " +
            "batch and serialization of the rows, which is not measured yet.");
    }

    /// <summary>Run number (from 1) → seconds.</summary>
    private static IEnumerable<KeyValuePair<long, double>> Indexed(IEnumerable<double> values) =>
        values.Select((v, i) => new KeyValuePair<long, double>(i + 1, v));
}
