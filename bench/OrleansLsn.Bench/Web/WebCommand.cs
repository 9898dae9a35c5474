using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using OrleansLsn.Bench.Common;
using Spectre.Console;

namespace OrleansLsn.Bench.Web;

/// <summary>
/// The <c>web</c> command: virtual users against the to-do sample over HTTP, each writing an item and reading it back
/// at once and at think times over the next 5 s, at several replica lags, with four read policies side by side in the
/// same run: OrleansLsn's read decision (<c>ours</c>), Rails-style pinning to the primary for 2 s after a write
/// (<c>rails</c>), always the primary and always the replica. Every read is checked for the user's own write.
/// </summary>
internal static class WebCommand
{
    public static Command Create()
    {
        var common = CommonOptions.WithoutPostgres();
        var command = new Command(
            "web",
            "Read-your-writes in a web app: virtual users against samples/TodoWeb over HTTP at replica lags of 0, 50 ms, 500 ms and 3 s; " +
            "ours vs Rails' 2 s pinning, always-primary and always-replica: stale reads, replica share, read latency, primary reads/s. Writes web.json.");
        common.AddTo(command);
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

            return await BenchRunner.InvokeAsync(() => RunAsync(settings, cancellationToken), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchSettings settings, CancellationToken cancellationToken)
    {
        bool quick = settings.Quick;
        // --quick: one lag, the one where every policy differs (ours waits, rails pins, replica misses).
        int[] lags = quick ? [500] : [0, 50, 500, 3000];
        int probes = quick ? 1 : 3;
        PolicyRun.Load load = quick
            ? new PolicyRun.Load(Users: 20, ArrivalsPerSecond: 10, LaterReads: 5, Spread: TimeSpan.FromSeconds(5))
            : new PolicyRun.Load(Users: 150, ArrivalsPerSecond: 15, LaterReads: 5, Spread: TimeSpan.FromSeconds(5));

        var report = new BenchReport("web", quick);
        report.Machine = await MachineInfo.CollectAsync(cancellationToken).ConfigureAwait(false);
        report.Machine["loadavg_at_start"] = LoadAverage();
        Action<string> progress = line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
        var results = new JsonObject();
        var lagDetails = new JsonObject();
        await using (WebBenchContext context = await WebBenchContext.StartAsync(quick, progress, cancellationToken).ConfigureAwait(false))
        {
            report.Machine["postgresql_primary"] = context.Deployment.ServerVersion;
            TimeSpan bound = context.App(WebPolicy.Ours).Bound.MaxWait;
            report.Set("ours_max_wait_ms", bound.TotalMilliseconds);
            report.SetText("ours_on_timeout", context.App(WebPolicy.Ours).Bound.OnTimeout.ToString());
            report.Set("rails_delay_ms", RailsReads.Delay.TotalMilliseconds);
            report.Values["load"] = new JsonObject
            {
                ["users_per_run"] = load.Users,
                ["arrivals_per_sec"] = load.ArrivalsPerSecond,
                ["reads_per_user"] = load.LaterReads + 1,
                ["think_time_spread_s"] = load.Spread.TotalSeconds,
            };
            report.Values["lags"] = lagDetails;
            report.Values["results"] = results;
            Describe(report, load, bound);

            var scenarios = new List<(string, BenchRunner.Scenario<WebBenchContext>)> { ("warm-up (every app, lag 0, not recorded)", WarmUpAsync) };
            for (int i = 0; i < lags.Length; i++)
            {
                int lag = lags[i];
                int index = i;
                scenarios.Add(($"lag {lag} ms", (c, r, ct) => LagAsync(c, r, lag, index, probes, load, bound, results, lagDetails, progress, ct)));
            }

            await BenchRunner.RunScenariosAsync(scenarios, context, report, cancellationToken).ConfigureAwait(false);
        }

        report.Machine["loadavg_at_end"] = LoadAverage();
        return await BenchRunner.FinishAsync(report, settings.OutputDirectory, cancellationToken).ConfigureAwait(false);
    }

    private static async Task WarmUpAsync(WebBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        // The first requests of each app pay for EF Core's model and query compilation, Kestrel's and the pools' start,
        // and the first run at full rate for the JIT's later tiers and the thread pool's growth: 3 s at the measured rate.
        var warm = new PolicyRun.Load(Users: context.Quick ? 10 : 45, ArrivalsPerSecond: 15, LaterReads: 1, Spread: TimeSpan.FromSeconds(1));
        foreach (PolicyApp app in context.Apps)
        {
            _ = await PolicyRun.RunAsync(app, warm, 0, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task LagAsync(
        WebBenchContext context, BenchReport report, int lagMs, int index, int probes, PolicyRun.Load load, TimeSpan bound,
        JsonObject results, JsonObject lagDetails, Action<string> progress, CancellationToken cancellationToken)
    {
        TimeSpan lag = TimeSpan.FromMilliseconds(lagMs);
        List<double> applied = await context.SetLagAsync(lag, probes, cancellationToken).ConfigureAwait(false);
        string key = lagMs.ToString(CultureInfo.InvariantCulture);
        lagDetails[key] = new JsonObject
        {
            ["recovery_min_apply_delay_ms"] = lagMs,
            ["measured_apply_delay_ms"] = new JsonArray([.. applied.Select(a => (JsonNode?)Math.Round(a, 1))]),
        };
        progress(string.Create(CultureInfo.InvariantCulture, $"  {WebBenchContext.Region}'s standby: recovery_min_apply_delay = {lagMs} ms; a commit reached it after {string.Join(" / ", applied.Select(a => a.ToString("0.0", CultureInfo.InvariantCulture)))} ms"));

        // Policies one after another, the first one rotating with the lag; the same think times for each (same seed).
        var runs = new Dictionary<string, PolicyRun>(StringComparer.Ordinal);
        for (int k = 0; k < WebPolicy.All.Count; k++)
        {
            string policy = WebPolicy.All[(k + index) % WebPolicy.All.Count];
            await context.CatchUpAsync(lag, cancellationToken).ConfigureAwait(false);
            PolicyRun run = await PolicyRun.RunAsync(context.App(policy), load, 1000 + lagMs, cancellationToken).ConfigureAwait(false);
            runs[policy] = run;
            progress(string.Create(
                CultureInfo.InvariantCulture,
                $"  lag {lagMs} ms, {policy}: {run.Reads.Count} reads, {run.Stale} stale, replica share {Percent(run.ReplicaShare)}, read p50 / p99 {run.Latency.P50:0.0} / {run.Latency.P99:0.0} ms, primary {run.PrimaryReadsPerSecond:0.0} reads/s, {run.Wall.TotalSeconds:0.0} s"));
        }

        var byPolicy = new JsonObject();
        foreach (string policy in WebPolicy.All)
        {
            byPolicy[policy] = runs[policy].ToJson();
        }

        results[key] = byPolicy;
        AddRows(report, lagMs, bound, runs);
    }

    private static void AddRows(BenchReport report, int lagMs, TimeSpan bound, Dictionary<string, PolicyRun> runs)
    {
        PolicyRun ours = runs[WebPolicy.Ours];
        PolicyRun rails = runs[WebPolicy.Rails];
        PolicyRun primary = runs[WebPolicy.Primary];
        PolicyRun replica = runs[WebPolicy.Replica];
        string lag = string.Create(CultureInfo.InvariantCulture, $"lag {lagMs} ms");
        bool withinBound = lagMs < bound.TotalMilliseconds;
        bool pastRails = lagMs > RailsReads.Delay.TotalMilliseconds;

        report.AddRow(new ResultRow(
            $"{lag}: stale reads (the user's own item missing), of {ours.Reads.Count} reads per policy",
            Format.Count(ours.Stale),
            $"rails {Format.Count(rails.Stale)}; primary {Format.Count(primary.Stale)}; replica {Format.Count(replica.Stale)}",
            "—",
            "ours 0",
            ours.Stale == 0,
            $"ours_no_stale_lag_{lagMs}"));

        bool railsAsExpected = pastRails ? rails.Stale > 0 : rails.Stale == 0;
        bool replicaAsExpected = lagMs == 0 || replica.Stale > 0;
        report.AddRow(new ResultRow(
            $"{lag}: the anchors miss the user's write where they should (the lag is real)",
            "—",
            $"rails {Format.Count(rails.Stale)}; replica {Format.Count(replica.Stale)}",
            "—",
            (pastRails ? "rails > 0 (lag past its 2 s)" : "rails 0 (lag within its 2 s)") + (lagMs == 0 ? "" : "; replica > 0"),
            railsAsExpected && replicaAsExpected,
            $"anchors_stale_lag_{lagMs}"));

        report.AddRow(new ResultRow(
            $"{lag}: replica share of the reads",
            Percent(ours.ReplicaShare),
            $"rails {Percent(rails.ReplicaShare)}; primary {Percent(primary.ReplicaShare)}; replica {Percent(replica.ReplicaShare)}",
            Format.Ratio(ours.ReplicaShare, rails.ReplicaShare),
            withinBound ? "≥ rails'" : $"none: past ours' {bound.TotalMilliseconds:0} ms wait bound, ours reads the primary",
            withinBound ? ours.ReplicaShare >= rails.ReplicaShare : null,
            withinBound ? $"ours_replica_share_ge_rails_lag_{lagMs}" : null));

        report.AddRow(new ResultRow(
            $"{lag}: primary reads per second",
            Rate(ours.PrimaryReadsPerSecond),
            $"rails {Rate(rails.PrimaryReadsPerSecond)}; primary {Rate(primary.PrimaryReadsPerSecond)}; replica {Rate(replica.PrimaryReadsPerSecond)}",
            Format.Ratio(ours.PrimaryReadsPerSecond, rails.PrimaryReadsPerSecond),
            withinBound ? "≤ rails'" : "none (as above)",
            withinBound ? ours.PrimaryReadsPerSecond <= rails.PrimaryReadsPerSecond : null,
            withinBound ? $"ours_primary_reads_le_rails_lag_{lagMs}" : null));

        report.AddRow(new ResultRow(
            $"{lag}: read p50 / p99, every read",
            Pair(ours.Latency),
            $"rails {Pair(rails.Latency)}; primary {Pair(primary.Latency)}; replica {Pair(replica.Latency)}",
            Format.Ratio(ours.Latency.P99, rails.Latency.P99),
            "measured (loopback: the primary is as near as the replica)",
            null));

        report.AddRow(new ResultRow(
            $"{lag}: read p50 / p99, the read right after the redirect",
            Pair(ours.AtOnce),
            $"rails {Pair(rails.AtOnce)}; primary {Pair(primary.AtOnce)}; replica {Pair(replica.AtOnce)}",
            Format.Ratio(ours.AtOnce.P99, rails.AtOnce.P99),
            "measured (ours waits here for the replica, up to its bound)",
            null));
    }

    private static void Describe(BenchReport report, PolicyRun.Load load, TimeSpan bound)
    {
        report.Note(
            "Topology: a local primary and one hot standby per region (eu-west, us-east; PostgreSQL on loopback, fsync=off), one silo process of src/Silo per region " +
            "(membership in PostgreSQL, mutual TLS), and four instances of samples/TodoWeb in the benchmark process (Kestrel on loopback, each with its own Orleans client), " +
            FormattableString.Invariant($"one per policy, all reading in {WebBenchContext.Region}. The lag is {WebBenchContext.Region}'s standby's recovery_min_apply_delay, set with ALTER SYSTEM and ") +
            "pg_reload_conf() on the standby (allowed on a hot standby) and checked with pg_settings and a probe commit (lags.measured_apply_delay_ms).");
        report.Note(
            FormattableString.Invariant($"Load per policy and lag: {load.Users} virtual users arriving at {load.ArrivalsPerSecond:0.#}/s; each opens '/', follows the redirect to a new list, posts one item ") +
            FormattableString.Invariant($"(a unique text, with the antiforgery token) and reads the list back right after the 303 and {load.LaterReads} more times, one at a random moment in each ") +
            FormattableString.Invariant($"{load.Spread.TotalSeconds / load.LaterReads:0.#} s slice of the {load.Spread.TotalSeconds:0} s after the write. Every request is a new TCP connection (Connection: close); ") +
            "cookies (the causal token, antiforgery, Rails' last write) live in the user's own cookie container. The policies run one after another at each lag, with the same think times; " +
            "the list read before the write is not counted.");
        report.Note(
            FormattableString.Invariant($"Policies: ours = the sample as written (OrleansLsn's read decision, MaxWait {bound.TotalMilliseconds:0} ms, then the primary); rails = Rails' DatabaseSelector ") +
            FormattableString.Invariant($"(the primary while the user's last non-GET request is less than {RailsReads.Delay.TotalSeconds:0} s old, kept in a cookie set after the request, else the replica); ") +
            "primary = always the primary's context; replica = always a context over ReadRouter.Replica. For the last three the read decision middleware still runs, with MaxWait 0 " +
            "and OnTimeout Stale (a check in memory, never a wait).");
        report.Note(
            "A read is stale when the user's item is not in the page's <ul id=\"items\">; every read is checked. Replica share: from the page's data-outcome (ours: no_token, replayed, " +
            "replayed_after_wait, stale = replica, primary = primary; the other policies name where they read). primary_reads_per_sec = reads served by the primary / the run's wall time. " +
            "Latency is the client's, connection included. On loopback the primary is as near as the replica, so a wait for the replica only adds time here; " +
            "across regions the primary is a WAN round trip away and that trade is measured elsewhere.");
    }

    private static string Percent(double share) => Format.Number(share * 100, "0.0") + " %";

    private static string Rate(double perSecond) => Format.Number(perSecond, "0.0") + "/s";

    private static string Pair(Percentiles p) => $"{Format.Number(p.P50, "0.0")} / {Format.Number(p.P99, "0.0")} ms";

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
