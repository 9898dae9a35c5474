using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Client;
using OrleansLsn.Tracking;

namespace OrleansLsn.Bench.Tracker;

/// <summary>
/// Standby load: queries per second sent to the standby while 1, 1 000 and 100 000 waiters are pending, for the tracker
/// (its own poll counter) and for naive per-waiter polling every 10 ms through a bounded pool (completed queries).
/// Waiters target an LSN one TiB past the standby's replay position, which it will not reach during the run.
/// </summary>
internal static class StandbyLoadScenario
{
    private const int NaivePoolSize = 50;
    private const ulong FarAhead = 1UL << 40;
    private static readonly long[] WaiterCounts = [1, 1_000, 100_000];

    public static async Task RunAsync(TrackerBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        TimeSpan settle = context.Quick ? TimeSpan.FromMilliseconds(300) : TimeSpan.FromSeconds(1);
        TimeSpan window = context.Quick ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(3);
        var tracker = new Dictionary<long, double>();
        var naive = new Dictionary<long, double>();
        var demanded = new Dictionary<long, double>();
        var naivePerWaiter = new Dictionary<long, double>();
        foreach (long waiters in WaiterCounts)
        {
            tracker[waiters] = await MeasureTrackerAsync(context, (int)waiters, settle, window, cancellationToken).ConfigureAwait(false);
            naive[waiters] = await MeasureNaiveAsync(context, (int)waiters, settle, window, cancellationToken).ConfigureAwait(false);
            demanded[waiters] = waiters * (1000.0 / NaivePollers.PollInterval.TotalMilliseconds);
            naivePerWaiter[waiters] = naive[waiters] / waiters;
        }

        report.Set("standby_qps", tracker);
        report.Set("naive_qps", naive);
        report.Set("naive_demanded_qps", demanded);
        report.Set("naive_qps_per_waiter", naivePerWaiter);
        report.Set("standby_load_window_s", window.TotalSeconds);
        report.Set("naive_pool_size", NaivePoolSize);

        double baseline = tracker[1];
        foreach (long waiters in WaiterCounts)
        {
            double ours = tracker[waiters];
            bool flat = ours <= 2 * baseline && ours >= baseline / 2;
            report.AddRow(new ResultRow(
                $"Standby queries/s, {Format.Count(waiters)} waiter(s)",
                Format.PerSecond(ours),
                $"naive {Format.PerSecond(naive[waiters])} (demands {Format.PerSecond(demanded[waiters])})",
                Format.Ratio(ours, naive[waiters]),
                waiters == 1 ? "reference for flatness" : $"within 2× of 1-waiter load ({Format.PerSecond(baseline)})",
                waiters == 1 ? null : flat,
                waiters == 1 ? null : $"standby_qps_flat_{waiters}"));
        }

        report.Note(
            $"Standby load: for each waiter count, the waiters were registered, left to settle {settle.TotalSeconds:0.#} s, then queries were " +
            $"counted over a {window.TotalSeconds:0.#} s window; every waiter was checked to be still pending at the end. Tracker: default options " +
            "(1 ms active poll), queries counted with a MeterListener on orleanslsn.tracker.polls. Naive: N independent loops of " +
            "'select pg_last_wal_replay_lsn() >= $1' (prepared) + Task.Delay(10 ms), each query on a connection from one NpgsqlDataSource " +
            $"with Max Pool Size={NaivePoolSize}; completed queries counted.");
        report.Note(
            "Naive at 100 000 waiters was measured, not extrapolated: 100 000 loops ran for the same settle + window as the other counts " +
            $"(pool wait timeout raised to 120 s so none failed). naive_demanded_qps is what the loops ask for (N × 100/s); naive_qps is what the " +
            "standby actually served (the pool and 2 cores cap it), so each naive waiter's effective poll interval is N / naive_qps seconds " +
            "(naive_qps_per_waiter is its inverse).");
    }

    private static async Task<double> MeasureTrackerAsync(
        TrackerBenchContext context, int waiters, TimeSpan settle, TimeSpan window, CancellationToken cancellationToken)
    {
        string region = $"load-{waiters}";
        var tracker = new LsnTracker(region, new LsnTrackerOptions { ReplicaConnectionString = context.Standby });
        var waits = new ValueTask<LsnWaitResult>[waiters];
        double qps;
        try
        {
            tracker.Start();
            await tracker.RefreshAsync(cancellationToken).ConfigureAwait(false);
            Lsn far = await FarTargetAsync(tracker, context, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < waiters; i++)
            {
                waits[i] = tracker.RequestAndAwaitAsync(far.Add((ulong)i), TimeSpan.FromMinutes(5), cancellationToken);
            }

            RequirePending(tracker, waiters, "after registering");
            await Task.Delay(settle, cancellationToken).ConfigureAwait(false);
            long before = context.Polls.Count(region);
            long start = Stopwatch.GetTimestamp();
            await Task.Delay(window, cancellationToken).ConfigureAwait(false);
            long after = context.Polls.Count(region);
            TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
            RequirePending(tracker, waiters, "at the end of the window");
            if (!tracker.Health.IsHealthy)
            {
                throw new InvalidOperationException($"Tracker {region} became {tracker.Health.Status} during the window: {tracker.Health.LastError}");
            }

            if (after == before)
            {
                throw new InvalidOperationException($"Tracker {region} sent no query during the window: the poll counter saw nothing.");
            }

            qps = (after - before) / elapsed.TotalSeconds;
        }
        finally
        {
            // Disposing times out every pending waiter.
            await tracker.DisposeAsync().ConfigureAwait(false);
        }

        for (int i = 0; i < waiters; i++)
        {
            LsnWaitResult result = await waits[i].ConfigureAwait(false);
            if (result.IsReady)
            {
                throw new InvalidOperationException($"A waiter for a far-future LSN was released as ready (replay {result.ReplayLsn}).");
            }
        }

        return qps;
    }

    private static async Task<double> MeasureNaiveAsync(
        TrackerBenchContext context, int waiters, TimeSpan settle, TimeSpan window, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(context.Standby)
        {
            MaxPoolSize = NaivePoolSize,
            Timeout = 120,
            ApplicationName = "orleanslsn-bench-naive",
        };
        await using NpgsqlDataSource dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        Lsn far = await FarTargetAsync(null, context, cancellationToken).ConfigureAwait(false);
        var pollers = new NaivePollers(dataSource, far);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var loops = new Task[waiters];
        for (int i = 0; i < waiters; i++)
        {
            loops[i] = Task.Run(() => pollers.LoopAsync(stop.Token), CancellationToken.None);
        }

        double qps;
        try
        {
            await Task.Delay(settle, cancellationToken).ConfigureAwait(false);
            long before = pollers.Completed;
            long start = Stopwatch.GetTimestamp();
            await Task.Delay(window, cancellationToken).ConfigureAwait(false);
            long after = pollers.Completed;
            qps = (after - before) / Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(loops).ConfigureAwait(false);
        }

        if (pollers.Errors > 0)
        {
            throw new InvalidOperationException(
                $"{pollers.Errors} naive queries failed with {waiters} waiters; first: {pollers.FirstError?.GetType().Name}: {pollers.FirstError?.Message}",
                pollers.FirstError);
        }

        return qps;
    }

    /// <summary>An LSN the standby will not reach during the run: one TiB past its current replay position.</summary>
    private static async Task<Lsn> FarTargetAsync(LsnTracker? tracker, TrackerBenchContext context, CancellationToken cancellationToken)
    {
        if (tracker?.LastReplay is Lsn replay)
        {
            return replay.Add(FarAhead);
        }

        await using var connection = new NpgsqlConnection(context.Primary);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return (await PrimaryLsn.GetCurrentInsertLsnAsync(connection, cancellationToken).ConfigureAwait(false)).Add(FarAhead);
    }

    private static void RequirePending(LsnTracker tracker, int expected, string when)
    {
        int pending = tracker.PendingWaiters;
        if (pending != expected)
        {
            throw new InvalidOperationException($"Tracker {tracker.Region} had {pending} pending waiters {when}, expected {expected}.");
        }
    }
}
