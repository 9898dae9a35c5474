using OrleansLsn.Bench.Common;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// Ping-grain calls through the client SDK at one concurrency level, side by side with a raw TCP echo of the same
/// payload: N workers in a closed loop, worker i calling grain <c>ping-(i mod 1000)</c> through a reference it got
/// once; then N workers on the echo: at N = 1 one outstanding request on its own socket, with blocking calls on both
/// ends (the anchor) and with async calls on both ends (for information); otherwise one shared, pipelined connection.
/// The sides alternate for a few rounds, each with the same warm-up and window, so load from elsewhere on the machine
/// hits them alike; the rounds of a side are pooled.
/// </summary>
internal static class CallScenario
{
    /// <summary>The issue's goal: calls per second at concurrency 1000 on 2 cores.</summary>
    public const double GoalCallsPerSecondC1000 = 100_000;

    /// <summary>The issue's goal: p50 at concurrency 1 at most this many times the raw echo's p50.</summary>
    public const double GoalP50RatioC1 = 2.0;

    public static async Task RunAsync(RuntimeBenchContext context, int concurrency, BenchReport report, CancellationToken cancellationToken)
    {
        var calls = new Func<ValueTask<byte[]>>[concurrency];
        for (int i = 0; i < concurrency; i++)
        {
            IPingGrain grain = context.Client.GetGrain<IPingGrain>(RuntimeBenchContext.GrainKey(i));
            byte[] payload = context.NewPayload(i);
            calls[i] = () => new ValueTask<byte[]>(grain.Ping(payload));
        }

        var grainRounds = new List<LoadResult>(context.Rounds);
        var echoRounds = new List<LoadResult>(context.Rounds);
        var asyncEchoRounds = new List<LoadResult>(context.Rounds);
        for (int round = 1; round <= context.Rounds; round++)
        {
            string suffix = $"at concurrency {concurrency} (round {round})";
            grainRounds.Add(await ClosedLoop.RunAsync(
                calls, context.PayloadBytes, context.Warmup, context.Duration, context.DrainLimit,
                $"grain calls {suffix}", () => PingGrain.Invocations, cancellationToken).ConfigureAwait(false));
            if (concurrency == 1)
            {
                echoRounds.Add(await RunDirectEchoAsync(context, blocking: true, $"blocking raw echo {suffix}", cancellationToken).ConfigureAwait(false));
                asyncEchoRounds.Add(await RunDirectEchoAsync(context, blocking: false, $"async raw echo {suffix}", cancellationToken).ConfigureAwait(false));
            }
            else
            {
                echoRounds.Add(await RunPipelinedEchoAsync(context, concurrency, $"pipelined raw echo {suffix}", cancellationToken).ConfigureAwait(false));
            }
        }

        Record(report, grainRounds, echoRounds, asyncEchoRounds);
    }

    private static async Task<LoadResult> RunDirectEchoAsync(RuntimeBenchContext context, bool blocking, string what, CancellationToken cancellationToken)
    {
        await using DirectEchoClient direct = await DirectEchoClient.ConnectAsync(
            blocking ? context.Echo.BlockingEndPoint : context.Echo.EndPoint, blocking, context.PayloadBytes, cancellationToken).ConfigureAwait(false);
        byte[] payload = context.NewPayload(0);
        return await ClosedLoop.RunAsync(
            [() => direct.RoundTripAsync(payload)], context.PayloadBytes, context.Warmup, context.Duration, context.DrainLimit, what, null, cancellationToken)
            .ConfigureAwait(false);
    }

    private static async Task<LoadResult> RunPipelinedEchoAsync(RuntimeBenchContext context, int concurrency, string what, CancellationToken cancellationToken)
    {
        await using PipelinedEchoClient shared = await PipelinedEchoClient.ConnectAsync(context.Echo.EndPoint, cancellationToken).ConfigureAwait(false);
        var calls = new Func<ValueTask<byte[]>>[concurrency];
        for (int i = 0; i < concurrency; i++)
        {
            byte[] payload = context.NewPayload(i);
            calls[i] = () => new ValueTask<byte[]>(shared.RoundTripAsync(payload));
        }

        return await ClosedLoop.RunAsync(calls, context.PayloadBytes, context.Warmup, context.Duration, context.DrainLimit, what, null, cancellationToken)
            .ConfigureAwait(false);
    }

    private static void Record(BenchReport report, List<LoadResult> grainRounds, List<LoadResult> echoRounds, List<LoadResult> asyncEchoRounds)
    {
        LoadResult grains = LoadResult.Combine(grainRounds);
        LoadResult echo = LoadResult.Combine(echoRounds);
        int n = grains.Concurrency;
        var ours = new Percentiles(grains.LatenciesUs);
        var anchor = new Percentiles(echo.LatenciesUs);
        report.Set($"calls_per_sec_c{n}", grains.CallsPerSecond);
        report.Set($"p50_us_c{n}", ours.P50);
        report.Set($"p99_us_c{n}", ours.P99);
        report.Set($"mean_us_c{n}", ours.Mean);
        report.Set($"max_us_c{n}", ours.Max);
        report.Set($"calls_c{n}", grains.Calls);
        report.Set($"grain_invocations_in_window_c{n}", grains.ProbedInWindow ?? 0);
        report.Set($"calls_per_sec_c{n}_by_round", ByRound(grainRounds));
        report.Set($"echo_calls_per_sec_c{n}", echo.CallsPerSecond);
        report.Set($"echo_p50_us_c{n}", anchor.P50);
        report.Set($"echo_p99_us_c{n}", anchor.P99);
        report.Set($"echo_mean_us_c{n}", anchor.Mean);
        report.Set($"echo_max_us_c{n}", anchor.Max);
        report.Set($"echo_calls_c{n}", echo.Calls);
        report.Set($"echo_calls_per_sec_c{n}_by_round", ByRound(echoRounds));

        string level = $"concurrency {Format.Count(n)}";
        if (n == 1000)
        {
            report.AddRow(new ResultRow(
                $"Grain calls/s, {level}", Format.PerSecond(grains.CallsPerSecond), Format.PerSecond(GoalCallsPerSecondC1000),
                Format.Ratio(grains.CallsPerSecond, GoalCallsPerSecondC1000), $"≥ {Format.PerSecond(GoalCallsPerSecondC1000)} on 2 cores",
                grains.CallsPerSecond >= GoalCallsPerSecondC1000, "calls_per_sec_c1000"));
        }

        report.AddRow(new ResultRow(
            $"Grain calls/s, {level} (anchor: raw echo)", Format.PerSecond(grains.CallsPerSecond), Format.PerSecond(echo.CallsPerSecond),
            Format.Ratio(grains.CallsPerSecond, echo.CallsPerSecond), "info", null));
        if (n == 1)
        {
            double limit = GoalP50RatioC1 * anchor.P50;
            report.AddRow(new ResultRow(
                $"Grain call p50, {level} (anchor: raw echo)", Format.Us(ours.P50), Format.Us(anchor.P50), Format.Ratio(ours.P50, anchor.P50),
                $"≤ {Format.Number(GoalP50RatioC1, "0")}× raw echo p50 ({Format.Us(limit)})", ours.P50 <= limit, "p50_us_c1"));
        }
        else
        {
            report.AddRow(new ResultRow(
                $"Grain call p50, {level} (anchor: raw echo)", Format.Us(ours.P50), Format.Us(anchor.P50), Format.Ratio(ours.P50, anchor.P50), "info", null));
        }

        report.AddRow(new ResultRow(
            $"Grain call p99, {level} (anchor: raw echo)", Format.Us(ours.P99), Format.Us(anchor.P99), Format.Ratio(ours.P99, anchor.P99), "info", null));
        if (asyncEchoRounds.Count > 0)
        {
            LoadResult asyncEcho = LoadResult.Combine(asyncEchoRounds);
            var asyncAnchor = new Percentiles(asyncEcho.LatenciesUs);
            report.Set($"echo_async_calls_per_sec_c{n}", asyncEcho.CallsPerSecond);
            report.Set($"echo_async_p50_us_c{n}", asyncAnchor.P50);
            report.Set($"echo_async_p99_us_c{n}", asyncAnchor.P99);
            report.Set($"echo_async_calls_c{n}", asyncEcho.Calls);
            report.AddRow(new ResultRow(
                $"Grain call p50, {level} (anchor: async-socket echo)", Format.Us(ours.P50), Format.Us(asyncAnchor.P50),
                Format.Ratio(ours.P50, asyncAnchor.P50), "info", null));
        }
    }

    private static IEnumerable<KeyValuePair<long, double>> ByRound(List<LoadResult> rounds) =>
        rounds.Select((r, i) => KeyValuePair.Create((long)(i + 1), r.CallsPerSecond));
}
