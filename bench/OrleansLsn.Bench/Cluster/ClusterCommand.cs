using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Bench.Replication;
using OrleansLsn.PostgresLocal;
using Spectre.Console;

namespace OrleansLsn.Bench.Cluster;

/// <summary>
/// The <c>cluster</c> command: the whole path a user sees, client → gateway silo → grain → engine → PostgreSQL and back,
/// over real TCP with mutual TLS, each figure beside its anchor in the same run; then the same calls with TLS off.
/// </summary>
internal static class ClusterCommand
{
    public static Command Create()
    {
        var common = CommonOptions.WithoutPostgres();
        var siloGc = new Option<string>("--silo-gc")
        {
            Description = "The silo process's garbage collector: 'default' (the silo executable's own setting), 'server' or 'workstation'.",
            DefaultValueFactory = _ => "default",
        };
        siloGc.AcceptOnlyFromAmong("default", "server", "workstation");
        var command = new Command(
            "cluster",
            "Through the cluster (one silo process, a client over TCP with TLS): end-to-end wake vs the limit, Orleans' ping and Fly's algorithm; waits/s vs pings/s at 1000 in flight; " +
            "100 000 pending waits' silo memory; streaming through the ReplicationGrain vs pg_recvlogical; a paused observer under a 1 GB backlog; TLS on vs off. Writes cluster.json.");
        common.AddTo(command);
        command.Options.Add(siloGc);
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            BenchSettings settings;
            try
            {
                settings = common.Read(result);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                return BenchRunner.InvalidOption(ex);
            }

            bool? serverGc = result.GetValue(siloGc) switch { "server" => true, "workstation" => false, _ => null };
            return await BenchRunner.InvokeAsync(() => RunAsync(settings, serverGc, cancellationToken), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchSettings settings, bool? serverGc, CancellationToken cancellationToken)
    {
        bool quick = settings.Quick;
        int samples = quick ? 40 : 400;
        int rounds = quick ? 1 : 3;
        TimeSpan window = TimeSpan.FromSeconds(quick ? 1 : 2);
        int pendingCount = quick ? 10_000 : 100_000;
        int streamRuns = quick ? 1 : 3;
        int streamRows = quick ? 100_000 : 1_000_000;
        long backlogBytes = quick ? 64L << 20 : 1L << 30;
        TimeSpan hold = TimeSpan.FromSeconds(quick ? 3 : 10);
        int viewWaits = quick ? 100_000 : 1_000_000;
        int rawFlood = quick ? 10_000 : 100_000;
        int statusSamples = quick ? 200 : 1000;
        TimeSpan pushWindow = TimeSpan.FromSeconds(quick ? 3 : 10);

        var report = new BenchReport("cluster", quick);
        report.Machine = await MachineInfo.CollectAsync(cancellationToken).ConfigureAwait(false);
        Action<string> progress = line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
        await using (ClusterBenchContext context = await ClusterBenchContext.StartAsync(true, quick, streamRuns, streamRows, serverGc, liftClientCap: true, progress, cancellationToken).ConfigureAwait(false))
        {
            report.Machine["postgresql_primary"] = context.Deployment.ServerVersion;
            report.Note(
                $"Topology: a local primary and one hot standby (PostgreSQL on loopback), one silo as a separate process of src/Silo (pid {context.Silo.Pid}), and " +
                "the client in the benchmark process through OrleansLsn.Client, over real TCP with mutual TLS; membership in PostgreSQL.");
            await BenchRunner.RunScenariosAsync<ClusterBenchContext>(
                [
                    ("wake latency", (c, r, ct) => WakeAsync(c, r, samples, ct)),
                    ("calls per second at 1000 in flight", (c, r, ct) => ThroughputAsync(c, r, rounds, window, "", ct)),
                    ("pending waits", (c, r, ct) => PendingAsync(c, r, pendingCount, ct)),
                    ("replay view: waits for replayed LSNs", (c, r, ct) => ClusterViewScenarios.ReplayedAsync(c, r, window, ct)),
                    ("replay view: waits registered while replay is paused", (c, r, ct) => ClusterViewScenarios.PendingRateAsync(c, r, pendingCount, ct)),
                    ("replay view: silo memory, another client's status under floods", (c, r, ct) => ClusterViewScenarios.MemoryAndStatusAsync(c, r, viewWaits, rawFlood, statusSamples, "", ct)),
                    ("replay view: pushes with 100 views", (c, r, ct) => ClusterViewScenarios.PushesAsync(c, r, 100, pushWindow, ct)),
                    ("streaming through the grain", (c, r, ct) => StreamAsync(c, r, ct)),
                    ("paused observer", (c, r, ct) => PausedAsync(c, r, backlogBytes, hold, ct)),
                ],
                context,
                report,
                cancellationToken).ConfigureAwait(false);
        }

        await using (ClusterBenchContext plain = await ClusterBenchContext.StartAsync(false, quick, 0, 0, serverGc, liftClientCap: false, progress, cancellationToken).ConfigureAwait(false))
        {
            await BenchRunner.RunScenariosAsync<ClusterBenchContext>(
                [
                    ("TLS off: wake latency", (c, r, ct) => WakeNoTlsAsync(c, r, samples, ct)),
                    ("TLS off: calls per second", (c, r, ct) => ThroughputAsync(c, r, rounds, window, "_tls_off", ct)),
                    ("TLS off, default per-client cap: another client's status under a raw flood", (c, r, ct) => ClusterViewScenarios.MemoryAndStatusAsync(c, r, 0, rawFlood, statusSamples, "_default_cap", ct)),
                ],
                plain,
                report,
                cancellationToken).ConfigureAwait(false);
        }

        // Orleans' own shedding before the activation: requests past this many running plus queued in one activation are
        // rejected as they arrive (silo-wide, pending waits count as running). The per-client cap (10 000) plus 2 000.
        const int hardLimit = 12_000;
        var shedding = new Dictionary<string, string> { ["Orleans:Messaging:MaxEnqueuedRequestsHardLimit"] = hardLimit.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        await using (ClusterBenchContext shed = await ClusterBenchContext.StartAsync(false, quick, 0, 0, serverGc, liftClientCap: false, progress, cancellationToken, shedding).ConfigureAwait(false))
        {
            report.Note($"The '_hard_limit' rows: TLS off, the default per-client cap, and Orleans:Messaging:MaxEnqueuedRequestsHardLimit = {hardLimit} on the silo.");
            await BenchRunner.RunScenariosAsync<ClusterBenchContext>(
                [
                    ("TLS off, default per-client cap, Orleans' hard limit: another client's status under a raw flood", (c, r, ct) => ClusterViewScenarios.MemoryAndStatusAsync(c, r, 0, rawFlood, statusSamples, "_hard_limit", ct)),
                ],
                shed,
                report,
                cancellationToken).ConfigureAwait(false);
        }

        AddTlsRows(report);
        return await BenchRunner.FinishAsync(report, settings.OutputDirectory, cancellationToken).ConfigureAwait(false);
    }

    private static async Task WakeAsync(ClusterBenchContext context, BenchReport report, int samples, CancellationToken cancellationToken)
    {
        WakeFigures f = await ClusterWakeScenario.MeasureAsync(context, samples, withFlyAndBusy: true, cancellationToken).ConfigureAwait(false);
        report.Set("e2e_wake_p50_ms", f.Ours.P50);
        report.Set("e2e_wake_p99_ms", f.Ours.P99);
        report.Set("limit_p50_ms", f.Limit.P50);
        report.Set("limit_p99_ms", f.Limit.P99);
        report.Set("ping_p50_ms", f.Ping.P50);
        report.Set("ping_p99_ms", f.Ping.P99);
        report.Set("fly_wake_p50_ms", f.Fly!.P50);
        report.Set("fly_wake_p99_ms", f.Fly.P99);
        report.Set("e2e_wake_busy_p50_ms", f.OursBusy!.P50);
        report.Set("e2e_wake_busy_p99_ms", f.OursBusy.P99);
        report.Set("limit_busy_p50_ms", f.LimitBusy!.P50);
        report.Set("limit_busy_p99_ms", f.LimitBusy.P99);
        report.Set("wake_samples", f.Ours.Count);
        double goal = f.Limit.P99 + f.Ping.P99 + 1;
        report.AddRow(new ResultRow(
            "wake p50 / p99, commit → RequestAndAwait Ready at the client (tracker idle)",
            $"{Format.Ms(f.Ours.P50)} / {Format.Ms(f.Ours.P99)}",
            $"limit {Format.Ms(f.Limit.P50)} / {Format.Ms(f.Limit.P99)}; ping {Format.Ms(f.Ping.P50)} / {Format.Ms(f.Ping.P99)}",
            Format.Ratio(f.Ours.P99, goal),
            $"p99 ≤ limit p99 + ping p99 + 1 ms ({Format.Ms(goal)})",
            f.Ours.P99 <= goal,
            "e2e_wake_p99"));
        double busyGoal = f.LimitBusy.P99 + f.Ping.P99 + 1;
        report.AddRow(new ResultRow(
            "same, tracker busy (another wait pending)",
            $"{Format.Ms(f.OursBusy.P50)} / {Format.Ms(f.OursBusy.P99)}",
            $"limit {Format.Ms(f.LimitBusy.P50)} / {Format.Ms(f.LimitBusy.P99)}",
            Format.Ratio(f.OursBusy.P99, busyGoal),
            $"p99 ≤ limit p99 + ping p99 + 1 ms ({Format.Ms(busyGoal)})",
            f.OursBusy.P99 <= busyGoal,
            "e2e_wake_busy_p99"));
        report.Set("view_wake_p50_ms", f.View!.P50);
        report.Set("view_wake_p99_ms", f.View.P99);
        report.Set("view_wake_busy_p50_ms", f.ViewBusy!.P50);
        report.Set("view_wake_busy_p99_ms", f.ViewBusy.P99);
        report.AddRow(new ResultRow(
            "view wake p50 / p99, commit → ReplayView wait Ready at the client (tracker idle)",
            $"{Format.Ms(f.View.P50)} / {Format.Ms(f.View.P99)}",
            $"limit {Format.Ms(f.Limit.P50)} / {Format.Ms(f.Limit.P99)}; ping {Format.Ms(f.Ping.P50)} / {Format.Ms(f.Ping.P99)}",
            Format.Ratio(f.View.P99, goal),
            $"p99 ≤ limit p99 + ping p99 + 1 ms ({Format.Ms(goal)})",
            f.View.P99 <= goal,
            "view_wake_p99"));
        report.AddRow(new ResultRow(
            "same through the view, tracker busy",
            $"{Format.Ms(f.ViewBusy.P50)} / {Format.Ms(f.ViewBusy.P99)}",
            $"limit {Format.Ms(f.LimitBusy.P50)} / {Format.Ms(f.LimitBusy.P99)}",
            Format.Ratio(f.ViewBusy.P99, busyGoal),
            $"p99 ≤ limit p99 + ping p99 + 1 ms ({Format.Ms(busyGoal)})",
            f.ViewBusy.P99 <= busyGoal,
            "view_wake_busy_p99"));
        report.AddRow(new ResultRow(
            "Fly's algorithm (50 ms sleep loop, one connection), same commits",
            $"ours p50 {Format.Ms(f.Ours.P50)}",
            $"Fly {Format.Ms(f.Fly.P50)} / {Format.Ms(f.Fly.P99)}",
            Format.Ratio(f.Fly.P50, f.Ours.P50),
            "ours ≥ 10× lower p50",
            f.Fly.P50 >= 10 * f.Ours.P50,
            "fly_10x"));
        report.Note(
            $"Wake: {f.Ours.Count} samples per side after a warm-up, sides rotating every round: ours (the client's RequestAndAwait, timed from the " +
            "commit's return), the limit (a prepared 'pg_last_wal_replay_lsn() >= $1' polled back to back by the benchmark on its own standby " +
            "connection), Fly (its v0.3 loop written from its description), and the ping (ILsnTrackerGrain.GetLastReplay, which returns a cached " +
            "field: Orleans' own round trip through the same client and gateway, timed alone). The busy case keeps a wait for a far LSN pending.");
    }

    private static async Task WakeNoTlsAsync(ClusterBenchContext context, BenchReport report, int samples, CancellationToken cancellationToken)
    {
        WakeFigures f = await ClusterWakeScenario.MeasureAsync(context, samples, withFlyAndBusy: false, cancellationToken).ConfigureAwait(false);
        report.Set("e2e_wake_p50_ms_tls_off", f.Ours.P50);
        report.Set("e2e_wake_p99_ms_tls_off", f.Ours.P99);
        report.Set("ping_p50_ms_tls_off", f.Ping.P50);
        report.Set("ping_p99_ms_tls_off", f.Ping.P99);
        report.Set("limit_p99_ms_tls_off", f.Limit.P99);
    }

    private static async Task ThroughputAsync(ClusterBenchContext context, BenchReport report, int rounds, TimeSpan window, string suffix, CancellationToken cancellationToken)
    {
        ILsnTrackerGrain tracker = context.Tracker;
        Lsn replayed = await WaitForReplayAsync(tracker, cancellationToken).ConfigureAwait(false);
        var waits = new List<double>();
        var pings = new List<double>();
        for (int round = 0; round < rounds + 1; round++)
        {
            // Round 0 warms both up; then they alternate, ours first in even rounds.
            for (int k = 0; k < 2; k++)
            {
                bool ours = (round + k) % 2 == 0;
                double rate = await ClusterLoadScenarios.CallsPerSecondAsync(
                    ours ? ct => tracker.RequestAndAwait(replayed, TimeSpan.FromSeconds(3), ct) : ct => tracker.GetLastReplay().WaitAsync(ct),
                    1000,
                    window,
                    cancellationToken).ConfigureAwait(false);
                if (round > 0)
                {
                    (ours ? waits : pings).Add(rate);
                }
            }
        }

        double wait = Median(waits);
        double ping = Median(pings);
        report.Set("waits_per_sec_c1000" + suffix, wait);
        report.Set("ping_calls_per_sec_c1000" + suffix, ping);
        report.Values["waits_per_sec_c1000_rounds" + suffix] = Array(waits);
        report.Values["ping_calls_per_sec_c1000_rounds" + suffix] = Array(pings);
        if (suffix.Length == 0)
        {
            report.AddRow(new ResultRow(
                "RequestAndAwait of replayed LSNs, 1 client, 1000 in flight (median of rounds)",
                Format.PerSecond(wait),
                $"ping calls {Format.PerSecond(ping)}",
                Format.Ratio(wait, ping),
                "≥ 0.8× ping",
                wait >= 0.8 * ping,
                "waits_per_sec_c1000"));
        }
    }

    private static async Task PendingAsync(ClusterBenchContext context, BenchReport report, int count, CancellationToken cancellationToken)
    {
        (double bytes, double release, long before, long pending, long after) = await ClusterLoadScenarios.PendingWaitsAsync(context, count, cancellationToken).ConfigureAwait(false);
        report.Set("pending_waits", count);
        report.Set("silo_bytes_per_pending_wait", bytes);
        report.Set("pending_release_s", release);
        report.Set("silo_rss_before_mb", before / 1048576.0);
        report.Set("silo_rss_pending_mb", pending / 1048576.0);
        report.Set("silo_rss_after_release_mb", after / 1048576.0);
        double? engine = EngineBytesPerWaiter();
        report.AddRow(new ResultRow(
            $"{Format.Count(count)} waits pending through the grain (replay paused): silo RSS growth per wait",
            Format.Bytes(bytes),
            engine is { } e ? $"engine alone: {Format.Bytes(e)} (tracker.json)" : "engine alone: no tracker.json",
            engine is { } e2 ? Format.Ratio(bytes, e2) : "—",
            "≤ 1 KiB",
            bytes <= 1024,
            "silo_bytes_per_pending_wait"));
        report.Note($"Pending waits: the silo's RSS went {before / 1048576.0:0} → {pending / 1048576.0:0} MB with {count} waits pending, all released Ready {release:0.00} s after replay resumed; {after / 1048576.0:0} MB right after (the GC gives memory back later).");
    }

    private static async Task StreamAsync(ClusterBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        int rows = context.StreamRows;
        await using var admin = new NpgsqlConnection(context.Primary);
        await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
        string[] pgSlots = [.. Enumerable.Range(1, context.StreamRuns).Select(r => $"bench_pgr_{r}")];
        string[] grainSlots = [.. Enumerable.Range(1, context.StreamRuns).Select(ClusterBenchContext.Slot)];
        await ClusterLoadScenarios.PrepareStreamingAsync(admin, [.. grainSlots, .. pgSlots], cancellationToken).ConfigureAwait(false);
        await ReplicationSql.ExecuteAsync(
            admin,
            $"insert into {ClusterBenchContext.Table} select g, md5(g::text) || md5((-g)::text), (g % 100000)::int, now() + g * interval '1 ms' from generate_series(1, $1::bigint) g",
            cancellationToken,
            (long)rows).ConfigureAwait(false);
        Lsn end = await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false);
        int version = await ReplicationSql.ScalarAsync<int>(admin, "select current_setting('server_version_num')::int", cancellationToken).ConfigureAwait(false);
        int protocol = version >= 160000 ? 4 : version >= 150000 ? 3 : 2;
        PgRecvLogical recv = PgRecvLogical.Find(PostgresBinaries.FindBinDirectory(), context.Primary);
        MachineInfo.AddRecvLogical(report, recv);
        TimeSpan timeout = TimeSpan.FromSeconds(60 + (rows / 10_000));
        var ours = new List<double>();
        var anchor = new List<double>();
        var cpuOurs = new JsonArray();
        var cpuAnchor = new JsonArray();
        for (int run = 1; run <= context.StreamRuns; run++)
        {
            for (int k = 0; k < 2; k++)
            {
                bool grain = (run + k) % 2 == 1;
                double siloBefore = ProcessCpuSeconds(context.Silo.Pid);
                await using RunCpuMeter cpu = RunCpuMeter.Start(context.Primary, grain ? "orleanslsn-pump-" + grainSlots[run - 1] : PgRecvLogical.ApplicationName);
                TimeSpan elapsed = grain
                    ? await ClusterLoadScenarios.StreamThroughGrainAsync(context, grainSlots[run - 1], rows, timeout, cancellationToken).ConfigureAwait(false)
                    : await recv.StreamToDevNullAsync(pgSlots[run - 1], ClusterBenchContext.Publication, protocol, end, timeout, cancellationToken).ConfigureAwait(false);
                RunCpuMeter.Result used = await cpu.StopAsync().ConfigureAwait(false);
                double silo = ProcessCpuSeconds(context.Silo.Pid) - siloBefore;
                (grain ? ours : anchor).Add(rows / elapsed.TotalSeconds);
                (grain ? cpuOurs : cpuAnchor).Add(new JsonObject
                {
                    ["seconds"] = Math.Round(elapsed.TotalSeconds, 2),
                    ["silo_cpu_s"] = Math.Round(silo, 2),
                    ["client_cpu_s"] = Math.Round(used.ClientSeconds, 2),
                    ["child_cpu_s"] = Math.Round(used.ChildSeconds, 2),
                    ["walsender_cpu_s"] = double.IsFinite(used.WalsenderSeconds) ? Math.Round(used.WalsenderSeconds, 2) : null,
                    ["machine_busy_percent"] = Math.Round(used.MachineBusyPercent, 0),
                });
                AnsiConsole.MarkupLine($"[grey]  run {run}: {(grain ? "grain → client" : "pg_recvlogical")} {elapsed.TotalSeconds:0.00} s; CPU s: silo {silo:0.0}, this process {used.ClientSeconds:0.0}, pg_recvlogical {used.ChildSeconds:0.0}, walsender {used.WalsenderSeconds:0.0}; machine {used.MachineBusyPercent:0}% busy[/]");
            }
        }

        double o = Median(ours);
        double a = Median(anchor);
        report.Set("stream_rows_per_sec", o);
        report.Set("pg_recvlogical_rows_per_sec", a);
        report.Values["stream_rows_per_sec_runs"] = Array(ours);
        report.Values["pg_recvlogical_rows_per_sec_runs"] = Array(anchor);
        report.Values["stream_cpu_runs"] = cpuOurs;
        report.Values["pg_recvlogical_cpu_runs"] = cpuAnchor;
        report.AddRow(new ResultRow(
            $"{Format.Count(rows)} rows in one transaction, through ReplicationGrain to a client IChangeObserver over TCP, every column read, every batch confirmed (median)",
            Format.PerSecond(o),
            $"pg_recvlogical (pgoutput {protocol}, /dev/null): {Format.PerSecond(a)}",
            Format.Ratio(o, a),
            "≥ 1.0×",
            o >= a,
            "stream_rows_per_sec"));
        report.Note($"Streaming: {context.StreamRuns} runs per side, alternating which goes first; each run has its own slot created before the workload, and is timed from the subscribe (or pg_recvlogical's start) to the last row.");
    }

    private static async Task PausedAsync(ClusterBenchContext context, BenchReport report, long backlogBytes, TimeSpan hold, CancellationToken cancellationToken)
    {
        string slot = ClusterBenchContext.Slot(0);
        await using var admin = new NpgsqlConnection(context.Primary);
        await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ReplicationSql.ExecuteAsync(admin, "create table if not exists bench_cluster_paused (id bigserial primary key, payload text)", cancellationToken).ConfigureAwait(false);
        await ReplicationSql.ExecuteAsync(admin, "alter publication " + ClusterBenchContext.Publication + " add table bench_cluster_paused", cancellationToken).ConfigureAwait(false);
        var observer = new ClusterLoadScenarios.CountingObserver();
        observer.Hold();
        IChangeObserver reference = context.Client.Cluster.CreateObjectReference<IChangeObserver>(observer);
        IReplicationGrain grain = context.Client.Cluster.GetGrain<IReplicationGrain>(slot);
        await grain.Subscribe(reference).ConfigureAwait(false);
        var sw = Stopwatch.StartNew();
        while ((await grain.GetStatus().ConfigureAwait(false)) is not { State: ReplicationState.Streaming, ServerPid: not null })
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException("The paused scenario's grain did not start streaming.");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }

        ReplicationStatus before = await grain.GetStatus().ConfigureAwait(false);
        long rssBefore = context.Silo.ReadRssBytes();
        long rssMax = rssBefore;
        Lsn start = await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false);
        var write = Stopwatch.StartNew();
        while (true)
        {
            await ReplicationSql.ExecuteAsync(admin, "insert into bench_cluster_paused(payload) select repeat(md5(g::text), 6) from generate_series(1, 100000) g", cancellationToken).ConfigureAwait(false);
            rssMax = Math.Max(rssMax, context.Silo.ReadRssBytes());
            if ((await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false)) - start >= backlogBytes)
            {
                break;
            }
        }

        TimeSpan written = write.Elapsed;
        var held = Stopwatch.StartNew();
        while (held.Elapsed < hold)
        {
            rssMax = Math.Max(rssMax, context.Silo.ReadRssBytes());
            await Task.Delay(200, cancellationToken).ConfigureAwait(false);
        }

        ReplicationStatus after = await grain.GetStatus().ConfigureAwait(false);
        Lsn wrote = await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false);
        int disconnects = (int)(after.ReconnectCount - before.ReconnectCount) + (after.ServerPid == before.ServerPid ? 0 : 1);
        double growth = (rssMax - rssBefore) / 1048576.0;
        report.Set("paused_backlog_mb", (wrote - start) / 1048576.0);
        report.Set("paused_silo_rss_growth_mb", growth);
        report.Set("disconnects_while_paused", disconnects);
        report.SetText("paused_pause_reasons", after.PauseReasons.ToString());
        report.AddRow(new ResultRow(
            $"client observer not confirming, {((wrote - start) / 1048576.0):0} MB of WAL written in {written.TotalSeconds:0} s, held {hold.TotalSeconds:0} s more: silo RSS growth / disconnects",
            $"{growth:0.0} MB / {disconnects}",
            "—",
            "—",
            "≤ 32 MB, 0",
            growth <= 32 && disconnects == 0,
            "paused"));
        report.Note($"Paused observer: pause reasons at the end {after.PauseReasons}, backlog {after.BacklogBatches} batches / {after.BacklogBytes / 1048576.0:0.0} MB, walsender PID {before.ServerPid} → {after.ServerPid}, reconnects {after.ReconnectCount - before.ReconnectCount}; the silo's RSS was sampled during the write and the hold.");
        observer.Release();
        await grain.Unsubscribe(reference).ConfigureAwait(false);
        context.Client.Cluster.DeleteObjectReference<IChangeObserver>(reference);
        GC.KeepAlive(observer);
    }

    private static void AddTlsRows(BenchReport report)
    {
        if (report.Values["ping_calls_per_sec_c1000"] is JsonValue on && report.Values["ping_calls_per_sec_c1000_tls_off"] is JsonValue off
            && report.Values["e2e_wake_p50_ms"] is JsonValue wakeOn && report.Values["e2e_wake_p50_ms_tls_off"] is JsonValue wakeOff)
        {
            report.AddRow(new ResultRow(
                "TLS cost: ping calls/s at 1000 in flight, and e2e wake p50",
                $"TLS on: {Format.PerSecond(on.GetValue<double>())}, {Format.Ms(wakeOn.GetValue<double>())}",
                $"TLS off: {Format.PerSecond(off.GetValue<double>())}, {Format.Ms(wakeOff.GetValue<double>())}",
                Format.Ratio(on.GetValue<double>(), off.GetValue<double>()),
                "measured (no goal)",
                null));
        }
    }

    /// <summary>User + system CPU seconds of process <paramref name="pid"/> (fields 14 and 15 of /proc/PID/stat).</summary>
    private static double ProcessCpuSeconds(int pid)
    {
        string text = File.ReadAllText($"/proc/{pid}/stat");
        string[] fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture)) / 100.0;
    }

    private static double? EngineBytesPerWaiter()
    {
        string path = Path.Combine(RepoRoot.DefaultResultsDirectory(), "tracker.json");
        try
        {
            return JsonNode.Parse(File.ReadAllText(path))?["bytes_per_waiter"]?.GetValue<double>();
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static async Task<Lsn> WaitForReplayAsync(ILsnTrackerGrain tracker, CancellationToken cancellationToken)
    {
        for (int i = 0; i < 200; i++)
        {
            if (await tracker.GetLastReplay().ConfigureAwait(false) is { } replay)
            {
                return replay;
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        throw new InvalidOperationException("The tracker never reported a replay position.");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static JsonArray Array(List<double> values) => new([.. values.Select(v => (JsonNode?)Math.Round(v, 1))]);
}
