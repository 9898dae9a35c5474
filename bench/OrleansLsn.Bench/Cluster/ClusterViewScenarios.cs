using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Client;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Bench.Cluster;

/// <summary>
/// Waits decided in the client (issue 23), each beside its grain-path anchor in the same run: waits for replayed LSNs
/// through the view, many waits registered while replay is paused and then released, the silo's memory per view wait,
/// pushes with 100 views, and another client's status calls while one client holds a million view waits or floods the
/// tracker with raw grain waits.
/// </summary>
internal static class ClusterViewScenarios
{
    private const string Table = "bench_cluster_view";

    /// <summary>Waits for a replayed LSN through the view on two threads (the machine's cores) for <paramref name="window"/>.</summary>
    public static async Task ReplayedAsync(ClusterBenchContext context, BenchReport report, TimeSpan window, CancellationToken cancellationToken)
    {
        ReplayView view = context.Views.Get(ClusterBenchContext.Region);
        await using var primary = new NpgsqlConnection(context.Primary);
        await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
        Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken).ConfigureAwait(false);
        if (!(await view.WaitAsync(lsn, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false)).IsReady)
        {
            throw new InvalidOperationException($"The view did not reach {lsn}.");
        }

        var rounds = new List<double>();
        for (int round = 0; round < 4; round++)
        {
            long completed = 0;
            var sw = Stopwatch.StartNew();
            Task[] loops = [.. Enumerable.Range(0, Environment.ProcessorCount).Select(_ => Task.Run(async () =>
            {
                long mine = 0;
                while (sw.Elapsed < window)
                {
                    for (int i = 0; i < 1000; i++)
                    {
                        LsnWaitResult result = await view.WaitAsync(lsn, TimeSpan.FromSeconds(3), cancellationToken).ConfigureAwait(false);
                        if (!result.IsReady)
                        {
                            throw new InvalidOperationException("A wait for a replayed LSN was not ready.");
                        }
                    }

                    mine += 1000;
                }

                Interlocked.Add(ref completed, mine);
            }, cancellationToken))];
            await Task.WhenAll(loops).ConfigureAwait(false);
            if (round > 0)
            {
                rounds.Add(completed / sw.Elapsed.TotalSeconds);
            }
        }

        double rate = rounds.Order().ElementAt(rounds.Count / 2);
        double grain = report.Values["waits_per_sec_c1000"]!.GetValue<double>();
        report.Set("view_waits_per_sec_replayed", rate);
        report.AddRow(new ResultRow(
            "waits for replayed LSNs through the client's replay view, 1 client (median of 3 rounds)",
            Format.PerSecond(rate),
            $"grain path (RequestAndAwait, 1000 in flight): {Format.PerSecond(grain)}",
            Format.Ratio(rate, grain),
            "≥ 1 000 000/s and ≥ 5× the grain path",
            rate >= 1_000_000 && rate >= 5 * grain,
            "view_waits_per_sec_replayed"));
    }

    /// <summary>
    /// <paramref name="count"/> waits registered while replay is paused, then all released, through the grain and
    /// through the view: waits per second from the first registration to the last release (the pause itself excluded).
    /// </summary>
    public static async Task PendingRateAsync(ClusterBenchContext context, BenchReport report, int count, CancellationToken cancellationToken)
    {
        double grain = await PendingRateAsync(context, count, throughView: false, cancellationToken).ConfigureAwait(false);
        double view = await PendingRateAsync(context, count, throughView: true, cancellationToken).ConfigureAwait(false);
        report.Set("grain_waits_per_sec_pending", grain);
        report.Set("view_waits_per_sec_pending", view);
        report.AddRow(new ResultRow(
            $"{Format.Count(count)} waits registered while replay is paused, then all released: waits/s end to end, through the view",
            Format.PerSecond(view),
            $"through RequestAndAwait: {Format.PerSecond(grain)}",
            Format.Ratio(view, grain),
            "≥ 10×",
            view >= 10 * grain,
            "view_waits_per_sec_pending"));
    }

    private static async Task<double> PendingRateAsync(ClusterBenchContext context, int count, bool throughView, CancellationToken cancellationToken)
    {
        ILsnTrackerGrain tracker = context.Tracker;
        ReplayView view = context.Views.Get(ClusterBenchContext.Region);
        await using var primary = new NpgsqlConnection(context.Primary);
        await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
        await context.Deployment.Postgres.PauseReplayAsync(ClusterBenchContext.Region, cancellationToken).ConfigureAwait(false);
        try
        {
            await ExecuteAsync(primary, $"create table if not exists {Table}(id int); insert into {Table} values (1)", cancellationToken).ConfigureAwait(false);
            Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken).ConfigureAwait(false);
            var register = Stopwatch.StartNew();
            var waits = new Task<LsnWaitResult>[count];
            for (int i = 0; i < count; i++)
            {
                waits[i] = throughView
                    ? view.WaitAsync(lsn, TimeSpan.FromSeconds(60), cancellationToken).AsTask()
                    : tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(60), cancellationToken);
            }

            // Registered: every wait pending where it is decided (the view at once; the tracker once its calls arrived).
            while (!throughView && (await tracker.GetStatus().ConfigureAwait(false)).PendingWaiters < count)
            {
                if (register.Elapsed > TimeSpan.FromSeconds(50))
                {
                    throw new TimeoutException($"Not all {count} waits became pending in the tracker within 50 s.");
                }

                await Task.Delay(10, cancellationToken).ConfigureAwait(false);
            }

            TimeSpan registered = register.Elapsed;
            var release = Stopwatch.StartNew();
            await context.Deployment.Postgres.ResumeReplayAsync(ClusterBenchContext.Region, cancellationToken).ConfigureAwait(false);
            LsnWaitResult[] results = await Task.WhenAll(waits).ConfigureAwait(false);
            TimeSpan released = release.Elapsed;
            if (results.Any(r => !r.IsReady))
            {
                throw new InvalidOperationException($"{results.Count(r => !r.IsReady)} of {count} waits were not Ready after replay resumed.");
            }

            return count / (registered + released).TotalSeconds;
        }
        finally
        {
            await context.Deployment.Postgres.ResumeReplayAsync(ClusterBenchContext.Region, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The silo's RSS growth per view wait with <paramref name="count"/> view waits pending (replay paused), and another
    /// client's status p99 then, beside its p99 with nothing pending; then the same client's p99 while this one floods
    /// the tracker with <paramref name="rawFlood"/> raw <see cref="ILsnTrackerGrain.RequestAndAwait"/> calls.
    /// </summary>
    public static async Task MemoryAndStatusAsync(ClusterBenchContext context, BenchReport report, int count, int rawFlood, int statusSamples, string suffix, CancellationToken cancellationToken)
    {
        await using OrleansLsnClient other = await LocalClient.ConnectAsync(context.Deployment.ClientSettings, cancellationToken, Microsoft.Extensions.Logging.LogLevel.Error).ConfigureAwait(false);
        ILsnTrackerGrain otherTracker = other.Cluster.GetGrain<ILsnTrackerGrain>(ClusterBenchContext.Region);
        await otherTracker.GetStatus().ConfigureAwait(false);
        Percentiles idle = await StatusAsync(otherTracker, statusSamples, cancellationToken).ConfigureAwait(false);
        report.Set("idle_status_p99_ms" + suffix, idle.P99);

        double? perWait = null;
        Percentiles? viewFlood = null;
        if (count > 0)
        {
            ReplayView view = context.Views.Get(ClusterBenchContext.Region);
            await using var primary = new NpgsqlConnection(context.Primary);
            await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
            await context.Deployment.Postgres.PauseReplayAsync(ClusterBenchContext.Region, cancellationToken).ConfigureAwait(false);
            try
            {
                await ExecuteAsync(primary, $"create table if not exists {Table}(id int); insert into {Table} values (2)", cancellationToken).ConfigureAwait(false);
                Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken).ConfigureAwait(false);
                await Task.Delay(500, cancellationToken).ConfigureAwait(false);
                long before = context.Silo.ReadRssBytes();
                var waits = new Task<LsnWaitResult>[count];
                for (int i = 0; i < count; i++)
                {
                    waits[i] = view.WaitAsync(lsn, TimeSpan.FromSeconds(60), cancellationToken).AsTask();
                }

                // Whatever the silo allocates for them (one demand) has happened well within this.
                await Task.Delay(1000, cancellationToken).ConfigureAwait(false);
                long pending = context.Silo.ReadRssBytes();
                viewFlood = await StatusAsync(otherTracker, statusSamples, cancellationToken).ConfigureAwait(false);
                perWait = (double)(pending - before) / count;
                report.Set("view_waits_pending", count);
                report.Set("silo_bytes_per_view_wait", perWait.Value);
                report.Set("flood_view_status_p99_ms", viewFlood.P99);
                await context.Deployment.Postgres.ResumeReplayAsync(ClusterBenchContext.Region, cancellationToken).ConfigureAwait(false);
                LsnWaitResult[] results = await Task.WhenAll(waits).ConfigureAwait(false);
                if (results.Any(r => !r.IsReady))
                {
                    throw new InvalidOperationException($"{results.Count(r => !r.IsReady)} view waits were not Ready after replay resumed.");
                }
            }
            finally
            {
                await context.Deployment.Postgres.ResumeReplayAsync(ClusterBenchContext.Region, CancellationToken.None).ConfigureAwait(false);
            }
        }

        // The raw flood: calls that no replica reaches, a 10 s timeout, fired at once from this client. Beside the
        // tracker's status, the other client times a call to another activation on the same silo (Orleans' management
        // grain, a stateless worker): if that is slow too, the time goes outside the tracker's inbox.
        IManagementGrain management = other.Cluster.GetGrain<IManagementGrain>(0);
        await management.GetActivationAddress(otherTracker, CancellationToken.None).ConfigureAwait(false);
        Percentiles idleControl = await CallsAsync(() => management.GetActivationAddress(otherTracker, CancellationToken.None).AsTask(), Math.Max(10, statusSamples / 10), cancellationToken).ConfigureAwait(false);
        ILsnTrackerGrain tracker = context.Tracker;
        var raw = new Task[rawFlood];
        long floodStart = Stopwatch.GetTimestamp();
        long lastRefusal = floodStart;
        for (int i = 0; i < rawFlood; i++)
        {
            raw[i] = tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(10), cancellationToken);
            _ = raw[i].ContinueWith(
                t =>
                {
                    long now = Stopwatch.GetTimestamp();
                    long seen;
                    while ((seen = Interlocked.Read(ref lastRefusal)) < now && Interlocked.CompareExchange(ref lastRefusal, now, seen) != seen)
                    {
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }

        double sendMs = Stopwatch.GetElapsedTime(floodStart).TotalMilliseconds;
        var statusTimes = new List<double>();
        var controlTimes = new List<double>();
        int statusShed = 0;
        for (int i = 0; i < Math.Max(10, statusSamples / 10); i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            try
            {
                await otherTracker.GetStatus().WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Orleans' response timeout ended the call: it counts with the time it took.
            }
            catch (Orleans.Runtime.LimitExceededException)
            {
                // Shed by Orleans before the activation (MaxEnqueuedRequestsHardLimit): counted, and with its time.
                statusShed++;
            }

            statusTimes.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            controlTimes.Add(await TimeAsync(() => management.GetActivationAddress(otherTracker, CancellationToken.None).AsTask(), cancellationToken).ConfigureAwait(false));
        }

        var rawStatus = new Percentiles(statusTimes);
        var rawControl = new Percentiles(controlTimes);
        int refused = 0;
        int shed = 0;
        int timedOut = 0;
        foreach (Task wait in raw)
        {
            try
            {
                await wait.ConfigureAwait(false);
                timedOut++;
            }
            catch (LimitExceededException)
            {
                refused++;
            }
            catch (Orleans.Runtime.LimitExceededException)
            {
                shed++;
            }
        }

        double refusalsMs = refused > 0 ? Stopwatch.GetElapsedTime(floodStart, Interlocked.Read(ref lastRefusal)).TotalMilliseconds : 0;
        report.Set("flood_raw_status_p99_ms" + suffix, rawStatus.P99);
        report.Set("flood_raw_status_p50_ms" + suffix, rawStatus.P50);
        report.Set("flood_raw_control_idle_p99_ms" + suffix, idleControl.P99);
        report.Set("flood_raw_control_p99_ms" + suffix, rawControl.P99);
        report.Set("flood_raw_control_p50_ms" + suffix, rawControl.P50);
        report.Set("flood_raw_send_ms" + suffix, sendMs);
        report.Set("flood_raw_refusals_done_ms" + suffix, refusalsMs);
        report.Set("flood_raw_refused" + suffix, refused);
        report.Set("flood_raw_shed" + suffix, shed);
        report.Set("flood_raw_status_shed" + suffix, statusShed);
        if (viewFlood is not null && perWait is not null)
        {
            double anchor = report.Values["silo_bytes_per_pending_wait"]!.GetValue<double>();
            report.AddRow(new ResultRow(
                $"{Format.Count(count)} waits pending in the client's view (replay paused): silo RSS growth per wait",
                Format.Bytes(perWait.Value),
                $"grain path: {Format.Bytes(anchor)}",
                "—",
                "≤ 16 B",
                perWait.Value <= 16,
                "silo_bytes_per_view_wait"));
            double goal = (2 * idle.P99) + 1;
            report.AddRow(new ResultRow(
                $"another client's GetStatus p99 while one client holds {Format.Count(count)} view waits",
                Format.Ms(viewFlood.P99),
                $"idle: {Format.Ms(idle.P99)}",
                Format.Ratio(viewFlood.P99, idle.P99),
                $"≤ 2× idle + 1 ms ({Format.Ms(goal)})",
                viewFlood.P99 <= goal,
                "flood_view_status_p99"));
        }

        string setting = suffix.Length > 0 ? ", " + suffix.TrimStart('_').Replace('_', ' ') : "";
        string outcome = $"{Format.Count(refused)} refused by the per-client cap, {Format.Count(shed)} shed by Orleans, {Format.Count(timedOut)} timed out; last refusal {Format.Ms(refusalsMs)} after the first call";
        report.AddRow(new ResultRow(
            $"another client's GetStatus p99 while one client fires {Format.Count(rawFlood)} raw RequestAndAwait{setting} ({outcome}{(statusShed > 0 ? $"; {statusShed} of the status calls shed" : "")})",
            Format.Ms(rawStatus.P99),
            $"idle: {Format.Ms(idle.P99)}",
            Format.Ratio(rawStatus.P99, idle.P99),
            "measured and explained",
            null,
            "flood_raw_status_p99" + suffix));
        report.AddRow(new ResultRow(
            $"same flood{setting}: that client's call to another activation on the same silo (Orleans' management grain), p99",
            Format.Ms(rawControl.P99),
            $"idle: {Format.Ms(idleControl.P99)}",
            Format.Ratio(rawControl.P99, idleControl.P99),
            "where the time goes: the tracker's inbox or the silo",
            null,
            "flood_raw_control_p99" + suffix));
    }

    /// <summary>
    /// 100 views of one region (each a <see cref="ReplayViews"/> of its own over the same client) under a steady stream
    /// of commits: the tracker's pushes per view per second with no waits pending, then with each view holding a wait.
    /// </summary>
    public static async Task PushesAsync(ClusterBenchContext context, BenchReport report, int viewCount, TimeSpan window, CancellationToken cancellationToken)
    {
        var sets = Enumerable.Range(0, viewCount).Select(_ => new ReplayViews(context.Client.Cluster)).ToList();
        try
        {
            ReplayView[] views = [.. sets.Select(s => s.Get(ClusterBenchContext.Region))];
            await using var primary = new NpgsqlConnection(context.Primary);
            await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(primary, $"create table if not exists {Table}(id int)", cancellationToken).ConfigureAwait(false);
            Lsn now = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken).ConfigureAwait(false);
            await Task.WhenAll(views.Select(v => v.WaitAsync(now, TimeSpan.FromSeconds(20), cancellationToken).AsTask())).ConfigureAwait(false);

            (double idlePushes, double idleCommits) = await MeasurePushesAsync(views, primary, window, cancellationToken).ConfigureAwait(false);

            Lsn far = now + (1UL << 40);
            using var hold = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Task[] held = [.. views.Select(v => v.WaitAsync(far, TimeSpan.FromSeconds(60), hold.Token).AsTask())];
            await Task.Delay(500, cancellationToken).ConfigureAwait(false);
            (double busyPushes, double busyCommits) = await MeasurePushesAsync(views, primary, window, cancellationToken).ConfigureAwait(false);
            await hold.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(held).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

            report.Set("pushes_per_sec_100_views_idle", idlePushes);
            report.Set("pushes_per_sec_100_views_busy", busyPushes);
            report.Set("commits_per_sec_idle_views", idleCommits);
            report.Set("commits_per_sec_busy_views", busyCommits);
            report.AddRow(new ResultRow(
                $"tracker pushes/s to {viewCount} idle views (no waits) under a steady stream of commits",
                $"{idlePushes:0.0}/s ({idlePushes / viewCount:0.00} per view)",
                $"commits {idleCommits:0}/s",
                "—",
                "≤ 1 push per view per second",
                idlePushes / viewCount <= 1.0,
                "pushes_per_sec_100_views_idle"));
            report.AddRow(new ResultRow(
                $"same, each view holding a wait",
                $"{busyPushes:0}/s ({busyPushes / viewCount:0.0} per view)",
                $"commits {busyCommits:0}/s",
                Format.Ratio(busyPushes / viewCount, busyCommits),
                "≤ one per advance per view",
                busyPushes / viewCount <= busyCommits,
                "pushes_per_sec_100_views_busy"));
        }
        finally
        {
            await Task.WhenAll(sets.Select(s => s.DisposeAsync().AsTask())).ConfigureAwait(false);
        }
    }

    private static async Task<(double Pushes, double Commits)> MeasurePushesAsync(ReplayView[] views, NpgsqlConnection primary, TimeSpan window, CancellationToken cancellationToken)
    {
        long before = views.Sum(v => v.Pushes);
        int commits = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < window)
        {
            await ExecuteAsync(primary, $"insert into {Table} values (3)", cancellationToken).ConfigureAwait(false);
            commits++;
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }

        double seconds = sw.Elapsed.TotalSeconds;
        return ((views.Sum(v => v.Pushes) - before) / seconds, commits / seconds);
    }

    private static async Task<Percentiles> CallsAsync(Func<Task> call, int samples, CancellationToken cancellationToken)
    {
        var times = new List<double>(samples);
        for (int i = 0; i < samples; i++)
        {
            times.Add(await TimeAsync(call, cancellationToken).ConfigureAwait(false));
        }

        return new Percentiles(times);
    }

    private static async Task<double> TimeAsync(Func<Task> call, CancellationToken cancellationToken)
    {
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            await call().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Orleans' response timeout ended the call: it counts with the time it took.
        }

        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private static Task<Percentiles> StatusAsync(ILsnTrackerGrain tracker, int samples, CancellationToken cancellationToken) =>
        CallsAsync(tracker.GetStatus, samples, cancellationToken);

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
