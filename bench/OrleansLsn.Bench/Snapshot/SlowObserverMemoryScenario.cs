using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Bench.Replication;
using OrleansLsn.Replication;

namespace OrleansLsn.Bench.Snapshot;

/// <summary>
/// Memory under a slow snapshot subscriber: the pump copies the whole table to a subscriber that takes
/// <see cref="BatchDelay"/> per batch of <see cref="SnapshotTable.ChunkRows"/> rows; since the next chunk is read only
/// once a batch is confirmed, the process's RSS should stay flat however large the table. Also checks that every row
/// arrives and that the pump's replication connection stays up throughout.
/// </summary>
internal static class SlowObserverMemoryScenario
{
    private const string Slot = "bench_snapshot_mem";
    private const string PumpApplication = "bench-pump-snapshot-slow";
    private const double GoalMb = 32;
    private const double MiB = 1024.0 * 1024.0;
    private static readonly TimeSpan BatchDelay = TimeSpan.FromMilliseconds(2);
    private static readonly TimeSpan SampleInterval = TimeSpan.FromMilliseconds(100);

    public static async Task RunAsync(SnapshotBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        await using var admin = new NpgsqlConnection(context.Primary);
        await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ReplicationSql.DropAsync(admin, [Slot], [], [], cancellationToken).ConfigureAwait(false);
        await ReplicationSql.CreateSlotAsync(admin, Slot, cancellationToken).ConfigureAwait(false);
        try
        {
            Measured measured = await MeasureAsync(context, cancellationToken).ConfigureAwait(false);
            Record(report, context, measured);
        }
        finally
        {
            await ReplicationSql.DropAsync(admin, [Slot], [], [], CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task<Measured> MeasureAsync(SnapshotBenchContext context, CancellationToken cancellationToken)
    {
        // A 2 ms delay is at least one timer tick (4 ms here), so allow for 10 ms per batch on top of the read.
        TimeSpan timeout = TimeSpan.FromSeconds(60 + (context.Rows / SnapshotTable.ChunkRows * 0.01) + (context.Rows / 10_000));
        var reader = new SnapshotReader(BatchDelay);
        await using ReplicationPump pump = SnapshotTable.NewPump(context.Primary, Slot, PumpApplication);
        pump.Start();
        await pump.WaitForSlotAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        await PumpWait.StreamingAsync(pump, cancellationToken).ConfigureAwait(false);
        ReplicationStatus before = pump.Status;

        ProcessMemory.CollectFully();
        long baselineRss = ProcessMemory.ReadRssBytes();
        long baselineHeap = GC.GetTotalMemory(forceFullCollection: false);
        using var stopSampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task<Samples> sampling = SampleAsync(stopSampling.Token);
        long start = Stopwatch.GetTimestamp();
        var request = new SnapshotRequest { Tables = [SnapshotTable.Qualified(SnapshotTable.Table)], ChunkRows = SnapshotTable.ChunkRows };
        Samples samples;
        await using (ReplicationSubscription subscription = await pump
            .SubscribeFromSnapshotAsync(reader.OnChangesAsync, "slow-snapshot-reader", request, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            try
            {
                await PumpWait.ForAsync(pump, reader.Complete, timeout, $"the slow snapshot of {SnapshotTable.Table}", cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await stopSampling.CancelAsync().ConfigureAwait(false);
                samples = await sampling.ConfigureAwait(false);
            }
        }

        ReplicationStatus after = pump.Status;
        return new Measured(
            baselineRss,
            samples.MaxRss - baselineRss,
            samples.MaxHeap - baselineHeap,
            samples.Count,
            Stopwatch.GetElapsedTime(start, reader.CompletedAt),
            reader.Rows,
            reader.TotalRows,
            reader.Batches,
            after.ReconnectCount - before.ReconnectCount,
            before.ServerPid,
            after.ServerPid);
    }

    /// <summary>Samples RSS and the managed heap every <see cref="SampleInterval"/> until cancelled, plus once at the end.</summary>
    private static async Task<Samples> SampleAsync(CancellationToken stop)
    {
        long maxRss = ProcessMemory.ReadRssBytes();
        long maxHeap = GC.GetTotalMemory(forceFullCollection: false);
        int count = 1;
        using var timer = new PeriodicTimer(SampleInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                maxRss = Math.Max(maxRss, ProcessMemory.ReadRssBytes());
                maxHeap = Math.Max(maxHeap, GC.GetTotalMemory(forceFullCollection: false));
                count++;
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        maxRss = Math.Max(maxRss, ProcessMemory.ReadRssBytes());
        maxHeap = Math.Max(maxHeap, GC.GetTotalMemory(forceFullCollection: false));
        return new Samples(maxRss, maxHeap, count + 1);
    }

    private static void Record(BenchReport report, SnapshotBenchContext context, Measured m)
    {
        double growthMb = m.RssGrowth / MiB;
        bool sameConnection = m.Reconnects == 0 && m.PidBefore is not null && m.PidBefore == m.PidAfter;
        report.Set("snapshot_rss_growth_mb", growthMb);
        report.Set("snapshot_rss_baseline_mb", m.BaselineRss / MiB);
        report.Set("snapshot_managed_heap_peak_growth_mb", m.HeapGrowth / MiB);
        report.Set("snapshot_rss_samples", m.SampleCount);
        report.Set("slow_snapshot_s", m.Elapsed.TotalSeconds);
        report.Set("slow_snapshot_batches", m.Batches);
        report.Set("slow_snapshot_rows_delivered", m.Rows);
        report.Set("slow_snapshot_total_rows", m.TotalRows);
        report.Set("slow_snapshot_reconnects", m.Reconnects);
        report.Set("slow_snapshot_batch_delay_ms", BatchDelay.TotalMilliseconds);

        report.AddRow(new ResultRow(
            $"RSS growth, slow observer copying {Format.Count(context.Rows)} rows ({Format.Number(context.TableBytes / MiB, "0")} MB table)",
            $"{Format.Number(growthMb, "0.0")} MB",
            $"limit {Format.Number(GoalMb, "0")} MB",
            Format.Ratio(growthMb, GoalMb),
            $"≤ {Format.Number(GoalMb, "0")} MB",
            growthMb <= GoalMb,
            "snapshot_rss_growth_mb"));
        report.AddRow(new ResultRow(
            "Rows delivered to the slow observer",
            $"{Format.Count(m.Rows)} (marker's TotalRows {Format.Count(m.TotalRows)})",
            $"table {Format.Count(context.Rows)}",
            "—",
            "all rows",
            m.Rows == context.Rows && m.TotalRows == context.Rows,
            "slow_snapshot_rows_delivered"));
        report.AddRow(new ResultRow(
            "Pump reconnects during the slow copy",
            $"{m.Reconnects} (walsender {m.PidBefore?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"} → {m.PidAfter?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"})",
            "—",
            "—",
            "0, same walsender",
            sameConnection,
            "slow_snapshot_reconnects"));

        report.Note(
            $"Slow observer: a pump on its own slot, streaming (walsender {m.PidBefore}), then SubscribeFromSnapshotAsync of the same table " +
            $"(ChunkRows {SnapshotTable.ChunkRows}) with a subscriber that waits {Format.Number(BatchDelay.TotalMilliseconds, "0")} ms (Task.Delay; " +
            $"a timer tick at least) before confirming each batch: {Format.Count(m.Batches)} batches in {Format.Number(m.Elapsed.TotalSeconds, "0.0")} s. " +
            $"RSS is VmRSS from /proc/self/status: baseline after a full blocking GC just before subscribing ({Format.Number(m.BaselineRss / MiB, "0")} MB); " +
            $"growth is the largest of {m.SampleCount} samples (every {Format.Number(SampleInterval.TotalMilliseconds, "0")} ms during the copy, no GC " +
            $"forced) minus the baseline. Managed heap peak growth over the same span: {Format.Number(m.HeapGrowth / MiB, "0.0")} MB. The connection " +
            "check compares the pump's ReconnectCount and its walsender PID before subscribing and after the completion marker.");
    }

    private sealed record Samples(long MaxRss, long MaxHeap, int Count);

    private sealed record Measured(
        long BaselineRss,
        long RssGrowth,
        long HeapGrowth,
        int SampleCount,
        TimeSpan Elapsed,
        long Rows,
        long TotalRows,
        long Batches,
        long Reconnects,
        int? PidBefore,
        int? PidAfter);
}
