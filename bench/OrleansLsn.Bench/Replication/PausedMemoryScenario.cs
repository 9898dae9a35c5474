using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Replication;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// Memory and connection while paused under a large backlog: the pump streams, is paused by hand, then
/// <see cref="ReplicationBenchContext.BacklogBytes"/> of WAL is written to its table and it stays paused for five times
/// <c>wal_sender_timeout</c> more. Measured: this process's RSS growth from just before the write (after a full GC) to
/// the end of the hold, and every sign of a disconnect (walsender PID changes, the pump's reconnects, walsender timeouts
/// in the server log). Then it is resumed and every row must arrive. The anchor is a consumer with Npgsql's defaults
/// that pauses by not reading, held the same way.
/// </summary>
internal static class PausedMemoryScenario
{
    private const string Table = "bench_backlog";
    private const string Publication = "bench_backlog_pub";
    private const string PumpSlot = "bench_backlog_pump";
    private const string NaiveSlot = "bench_backlog_naive";
    private const string PumpApplication = "bench-pump-paused";
    private const string NaiveApplication = "bench-npgsql-defaults";
    private const double GoalMb = 16;
    private const double MiB = 1024.0 * 1024.0;

    // 8192 rows of ~2 KB: about 16 MB of WAL per transaction, below logical_decoding_work_mem (64 MB), so nothing spills.
    private const int ChunkRows = 8192;

    // md5 repeated 60 times: 1 920 characters, so the row stays below the TOAST threshold and goes into the WAL whole.
    private const string InsertSql =
        $"insert into {Table} select g, repeat(md5(g::text), 60), (g % 1000)::int, now() from generate_series($1::bigint, $2::bigint) g";

    private const long NaiveBacklogBytes = 32L * 1024 * 1024;

    public static async Task RunAsync(ReplicationBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        await using var admin = new NpgsqlConnection(context.Primary);
        await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ReplicationSql.DropAsync(admin, [PumpSlot, NaiveSlot], [Publication], [Table], cancellationToken).ConfigureAwait(false);
        try
        {
            await ReplicationSql.ExecuteAsync(admin, $"create table {Table} (id bigint primary key, payload text, n int, ts timestamptz)", cancellationToken)
                .ConfigureAwait(false);
            await ReplicationSql.ExecuteAsync(admin, $"create publication {Publication} for table {Table}", cancellationToken).ConfigureAwait(false);
            await ReplicationSql.CreateSlotAsync(admin, PumpSlot, cancellationToken).ConfigureAwait(false);
            Paused pump = await RunPumpAsync(context, admin, cancellationToken).ConfigureAwait(false);
            Naive naive = await RunNaiveAsync(context, admin, pump.Rows, cancellationToken).ConfigureAwait(false);
            Record(report, context, pump, naive);
        }
        finally
        {
            await ReplicationSql.DropAsync(admin, [PumpSlot, NaiveSlot], [Publication], [Table], CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task<Paused> RunPumpAsync(ReplicationBenchContext context, NpgsqlConnection admin, CancellationToken cancellationToken)
    {
        // Rows are at least 1 KB of WAL each, so this holds every id the write can produce.
        var tally = new IdTally((int)(context.BacklogBytes / 1024) + ChunkRows);
        var options = new ReplicationPumpOptions
        {
            ConnectionString = context.Primary,
            SlotName = PumpSlot,
            PublicationName = Publication,
            CreateSlot = false,
            CreatePublication = false,
            ApplicationName = PumpApplication,
        };
        await using var pump = new ReplicationPump(options);
        await using ReplicationSubscription subscription = pump.Subscribe((batch, _) => tally.OnChangesAsync(batch), "tally");
        pump.Start();
        await PumpWait.StreamingAsync(pump, cancellationToken).ConfigureAwait(false);

        pump.Pause();
        long pausedAt = Stopwatch.GetTimestamp();
        long reconnectsBefore = pump.Status.ReconnectCount;
        ServerLogCursor? log = ServerLogCursor.AtEnd(context.LogFile);
        await using PausedHoldMonitor monitor = await PausedHoldMonitor.StartAsync(context.Primary, PumpApplication, cancellationToken).ConfigureAwait(false);
        await using var insert = new NpgsqlCommand(InsertSql, admin) { CommandTimeout = 600 };
        var from = new NpgsqlParameter<long>();
        var to = new NpgsqlParameter<long>();
        insert.Parameters.Add(from);
        insert.Parameters.Add(to);
        await insert.PrepareAsync(cancellationToken).ConfigureAwait(false);

        ProcessMemory.CollectFully();
        long baselineRss = ProcessMemory.ReadRssBytes();
        long baselineHeap = GC.GetTotalMemory(forceFullCollection: false);
        monitor.ResetPeakRss();

        (long rows, long walBytes, TimeSpan write) = await WriteBacklogAsync(admin, insert, from, to, 0, context.BacklogBytes, cancellationToken)
            .ConfigureAwait(false);
        if (rows > tally.Capacity)
        {
            throw new InvalidOperationException($"The backlog has {rows} rows but the tally was sized for {tally.Capacity}: rows are smaller than assumed.");
        }

        await Task.Delay(context.PausedHold, cancellationToken).ConfigureAwait(false);

        long endRss = ProcessMemory.ReadRssBytes();
        long endHeap = GC.GetTotalMemory(forceFullCollection: false);
        TimeSpan paused = Stopwatch.GetElapsedTime(pausedAt);
        PausedHoldMonitor.Result watched = await monitor.StopAsync(cancellationToken).ConfigureAwait(false);
        ReplicationStatus status = pump.Status;
        long reconnects = status.ReconnectCount - reconnectsBefore;
        int? timeouts = log?.Count(ServerLogCursor.WalSenderTimeoutMessage, PumpApplication);
        long deliveredWhilePaused = tally.Received;
        if (!status.PauseReasons.HasFlag(PauseReasons.Manual))
        {
            throw new InvalidOperationException($"The pump was no longer paused at the end of the hold: {PumpWait.Describe(status)}.");
        }

        // Resume and require every row.
        long resumedAt = Stopwatch.GetTimestamp();
        pump.Resume();
        TimeSpan drainLimit = TimeSpan.FromSeconds(120 + (walBytes / (10 * MiB)));
        try
        {
            await PumpWait.UntilAsync(pump, () => tally.Distinct >= rows, drainLimit, $"all {rows} backlog rows after resume", cancellationToken)
                .ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new InvalidOperationException(
                $"Rows were lost: {rows - tally.Distinct} of {rows} backlog rows did not arrive within {drainLimit.TotalSeconds:0} s of resuming " +
                $"(first missing id {tally.FirstMissing(rows)}). {e.Message}",
                e);
        }

        TimeSpan drain = Stopwatch.GetElapsedTime(resumedAt);
        if (tally.OutOfRange > 0 || tally.Distinct != rows)
        {
            throw new InvalidOperationException(
                $"The pump delivered {tally.Distinct} distinct backlog rows (expected {rows}) and {tally.OutOfRange} rows with an unknown id.");
        }

        return new Paused(
            rows,
            walBytes,
            write,
            paused,
            baselineRss,
            endRss - baselineRss,
            Math.Max(watched.PeakRssBytes, endRss) - baselineRss,
            endHeap - baselineHeap,
            watched,
            reconnects,
            timeouts,
            deliveredWhilePaused,
            drain,
            tally.Duplicates,
            status.StatusInterval);
    }

    private static async Task<Naive> RunNaiveAsync(ReplicationBenchContext context, NpgsqlConnection admin, long firstId, CancellationToken cancellationToken)
    {
        await ReplicationSql.CreateSlotAsync(admin, NaiveSlot, cancellationToken).ConfigureAwait(false);
        await using DefaultNpgsqlConsumer consumer = await DefaultNpgsqlConsumer.OpenAsync(context.Primary, NaiveApplication, cancellationToken)
            .ConfigureAwait(false);
        Task first = consumer.ReadFirstTransactionAsync(NaiveSlot, Publication, context.Protocol, cancellationToken);
        await using var insert = new NpgsqlCommand(InsertSql, admin) { CommandTimeout = 600 };
        var from = new NpgsqlParameter<long>();
        var to = new NpgsqlParameter<long>();
        insert.Parameters.Add(from);
        insert.Parameters.Add(to);
        from.TypedValue = firstId + 1;
        to.TypedValue = firstId + 1;
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await first.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);

        // From here on nothing reads the stream: the naive pause.
        ServerLogCursor? log = ServerLogCursor.AtEnd(context.LogFile);
        await using PausedHoldMonitor monitor = await PausedHoldMonitor.StartAsync(context.Primary, NaiveApplication, cancellationToken).ConfigureAwait(false);
        _ = await WriteBacklogAsync(admin, insert, from, to, firstId + 1, NaiveBacklogBytes, cancellationToken).ConfigureAwait(false);
        await Task.Delay(context.PausedHold, cancellationToken).ConfigureAwait(false);
        PausedHoldMonitor.Result watched = await monitor.StopAsync(cancellationToken).ConfigureAwait(false);
        int? timeouts = log?.Count(ServerLogCursor.WalSenderTimeoutMessage, NaiveApplication);
        return new Naive(Math.Max(watched.Disconnects, timeouts ?? 0), watched.Disconnects, timeouts);
    }

    /// <summary>Inserts chunks of rows after <paramref name="lastId"/>, one transaction each, until at least <paramref name="bytes"/> of WAL.</summary>
    private static async Task<(long Rows, long WalBytes, TimeSpan Elapsed)> WriteBacklogAsync(
        NpgsqlConnection admin,
        NpgsqlCommand insert,
        NpgsqlParameter<long> from,
        NpgsqlParameter<long> to,
        long lastId,
        long bytes,
        CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        Lsn first = await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false);
        long rows = 0;
        long written = 0;
        while (written < bytes)
        {
            from.TypedValue = lastId + rows + 1;
            to.TypedValue = lastId + rows + ChunkRows;
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            rows += ChunkRows;
            written = await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false) - first;
        }

        return (rows, written, Stopwatch.GetElapsedTime(start));
    }

    private static void Record(BenchReport report, ReplicationBenchContext context, Paused pump, Naive naive)
    {
        double growthMb = pump.RssGrowth / MiB;
        int disconnects = (int)Math.Max(Math.Max(pump.Watched.Disconnects, pump.Reconnects), pump.TimeoutLines ?? 0);
        double backlogMb = pump.WalBytes / MiB;
        double hold = context.PausedHold.TotalSeconds;
        report.Set("paused_rss_growth_mb", growthMb);
        report.Set("paused_rss_peak_growth_mb", pump.PeakRssGrowth / MiB);
        report.Set("paused_rss_baseline_mb", pump.BaselineRss / MiB);
        report.Set("paused_managed_heap_growth_mb", pump.HeapGrowth / MiB);
        report.Set("backlog_wal_mb", backlogMb);
        report.Set("backlog_rows", pump.Rows);
        report.Set("backlog_write_s", pump.Write.TotalSeconds);
        report.Set("paused_hold_after_write_s", hold);
        report.Set("paused_total_s", pump.PausedFor.TotalSeconds);
        report.Set("pump_status_interval_ms", pump.StatusInterval.TotalMilliseconds);
        report.Set("walsender_sent_while_paused_mb", pump.Watched.SentBytes / MiB);
        report.Set("disconnects_while_paused", disconnects);
        report.Set("disconnects_pid_changes", pump.Watched.Disconnects);
        report.Set("disconnects_reconnects", pump.Reconnects);
        if (pump.TimeoutLines is int lines)
        {
            report.Set("disconnects_timeout_log_lines", lines);
        }

        report.Set("npgsql_defaults_disconnects_while_paused", naive.Disconnects);
        report.Set("paused_rows_delivered", pump.DeliveredWhilePaused);
        report.Set("drain_s", pump.Drain.TotalSeconds);
        report.Set("drain_rows_per_sec", pump.Rows / pump.Drain.TotalSeconds);
        report.Set("drain_wal_mb_per_sec", backlogMb / pump.Drain.TotalSeconds);
        report.Set("drain_missing_rows", 0);
        report.Set("drain_duplicate_rows", pump.Duplicates);

        report.AddRow(new ResultRow(
            $"RSS growth while paused, {Format.Number(backlogMb, "0")} MB backlog",
            $"{Format.Number(growthMb, "0.0")} MB (peak {Format.Number(pump.PeakRssGrowth / MiB, "0.0")} MB)",
            $"limit {Format.Number(GoalMb, "0")} MB",
            Format.Ratio(growthMb, GoalMb),
            $"≤ {Format.Number(GoalMb, "0")} MB",
            growthMb <= GoalMb,
            "paused_rss_growth_mb"));
        string log = pump.TimeoutLines is int l ? $", timeout log lines {l}" : ", server log not read";
        report.AddRow(new ResultRow(
            $"Disconnects while paused ({Format.Number(pump.PausedFor.TotalSeconds, "0")} s, {Format.Number(hold, "0")} s after the write)",
            $"{disconnects} (PID changes {pump.Watched.Disconnects}, reconnects {pump.Reconnects}{log})",
            $"Npgsql defaults: {naive.Disconnects}",
            "—",
            "0",
            disconnects == 0,
            "disconnects_while_paused"));
        report.AddRow(new ResultRow(
            "Rows delivered while paused",
            Format.Count(pump.DeliveredWhilePaused),
            "—",
            "—",
            "0",
            pump.DeliveredWhilePaused == 0,
            "paused_rows_delivered"));
        report.AddRow(new ResultRow(
            "Drain after resume (every row checked)",
            $"{Format.Number(pump.Drain.TotalSeconds, "0.0")} s ({Format.PerSecond(pump.Rows / pump.Drain.TotalSeconds)}, {Format.Number(backlogMb / pump.Drain.TotalSeconds, "0")} MB/s)",
            "—",
            "—",
            $"all {Format.Count(pump.Rows)} rows; {Format.Count(pump.Duplicates)} duplicates",
            null));

        report.Note(
            $"Paused memory: the pump (default options, status interval {Format.Number(pump.StatusInterval.TotalMilliseconds, "0")} ms from " +
            $"wal_sender_timeout {Format.Number(context.WalSenderTimeout.TotalSeconds, "0.#")} s) streamed its slot, was paused with Pause(), then " +
            $"{Format.Count(pump.Rows)} rows of ~2 KB (id, 1 920-char payload, n, ts) were inserted in transactions of {Format.Count(ChunkRows)} rows " +
            $"until {Format.Number(backlogMb, "0")} MB of WAL ({Format.Number(pump.Write.TotalSeconds, "0.0")} s), and the pump stayed paused " +
            $"{Format.Number(hold, "0")} s more (5× wal_sender_timeout). RSS is VmRSS from /proc/self/status: baseline after a full blocking GC " +
            $"just before the write ({Format.Number(pump.BaselineRss / MiB, "0")} MB), growth at the end of the hold without a GC; peak over samples " +
            $"every 200 ms. Managed heap growth over the same span: {Format.Number(pump.HeapGrowth / MiB, "0.0")} MB. The walsender's sent_lsn moved " +
            $"{Format.Number(pump.Watched.SentBytes / MiB, "0.0")} MB while paused (it stops once the socket buffers are full).");
        report.Note(
            "Disconnects: disconnects_while_paused is the largest of three independent counts (so one disconnect seen three ways counts once): " +
            "walsender PID changes in pg_stat_replication for the pump's application_name, sampled every 200 ms (plus one if none served it at the " +
            "end), the pump's ReconnectCount delta, and 'terminating walsender process due to replication timeout' lines for that application " +
            "in the server log. The anchor is a LogicalReplicationConnection with Npgsql's defaults (WalReceiverStatusInterval 10 s) that read " +
            $"one transaction and then stopped reading, with a {Format.Number(NaiveBacklogBytes / MiB, "0")} MB backlog and the same hold " +
            $"(counted the same way: PID changes {naive.PidDisconnects}, timeout log lines {naive.TimeoutLines?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "not read"}).");
        report.Note(
            $"Drain: after the hold, Resume(); the subscriber marks each id in a preallocated array; the scenario fails unless every id " +
            $"1..{Format.Count(pump.Rows)} arrives. Time from Resume() until the last distinct id arrived: {Format.Number(pump.Drain.TotalSeconds, "0.00")} s.");
    }

    private sealed record Paused(
        long Rows,
        long WalBytes,
        TimeSpan Write,
        TimeSpan PausedFor,
        long BaselineRss,
        long RssGrowth,
        long PeakRssGrowth,
        long HeapGrowth,
        PausedHoldMonitor.Result Watched,
        long Reconnects,
        int? TimeoutLines,
        long DeliveredWhilePaused,
        TimeSpan Drain,
        long Duplicates,
        TimeSpan StatusInterval);

    private sealed record Naive(int Disconnects, int PidDisconnects, int? TimeoutLines);
}
