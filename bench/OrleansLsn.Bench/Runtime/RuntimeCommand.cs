using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OrleansLsn.Bench.Common;
using Spectre.Console;

namespace OrleansLsn.Bench.Runtime;

/// <summary>The <c>runtime</c> command: grain calls against a raw TCP echo, and observer pushes, on an in-process silo.</summary>
internal static class RuntimeCommand
{
    private static readonly int[] ConcurrencyLevels = [1, 100, 1000];

    public static Command Create()
    {
        var common = CommonOptions.WithoutPostgres();
        var rounds = new Option<int?>("--rounds")
        {
            Description = "Alternating rounds of grain calls and raw echo per concurrency level, pooled per side. Default 3, or 1 with --quick.",
        };
        var seconds = new Option<double?>("--seconds")
        {
            Description = "Measured window per round and side (grain calls, raw echo), in seconds. Default 2, or 1 with --quick.",
        };
        var warmup = new Option<double?>("--warmup-seconds")
        {
            Description = "Unmeasured run before each window, in seconds. Default 0.5.",
        };
        var payload = new Option<int?>("--payload-bytes")
        {
            Description = "Payload of a ping call and of a raw echo frame, in bytes. Default 32.",
        };
        var pushes = new Option<int?>("--pushes")
        {
            Description = "One-way observer pushes in the measured round (awaited pushes: a tenth). Default 200 000, or 50 000 with --quick.",
        };
        var callTimeout = new Option<double?>("--call-timeout-seconds")
        {
            Description = "The client's response timeout; a call still pending this long fails the level (a hang). Default 10.",
        };
        var command = new Command(
            "runtime",
            "Grain runtime: ping-grain calls at concurrency 1, 100 and 1000 against a raw TCP echo, and observer pushes to one client, on an " +
            "in-process silo over loopback; writes runtime.json. Needs no PostgreSQL.");
        common.AddTo(command);
        command.Options.Add(rounds);
        command.Options.Add(seconds);
        command.Options.Add(warmup);
        command.Options.Add(payload);
        command.Options.Add(pushes);
        command.Options.Add(callTimeout);
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            BenchSettings settings;
            Sizes sizes;
            try
            {
                settings = common.Read(result);
                sizes = new Sizes(
                    result.GetValue(rounds) ?? (settings.Quick ? 1 : 3),
                    TimeSpan.FromSeconds(result.GetValue(seconds) ?? (settings.Quick ? 1 : 2)),
                    TimeSpan.FromSeconds(result.GetValue(warmup) ?? 0.5),
                    result.GetValue(payload) ?? 32,
                    result.GetValue(pushes) ?? (settings.Quick ? 50_000 : 200_000),
                    TimeSpan.FromSeconds(result.GetValue(callTimeout) ?? 10));
                sizes.Validate();
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or OverflowException)
            {
                return BenchRunner.InvalidOption(ex);
            }

            return await BenchRunner.InvokeAsync(() => RunAsync(settings, sizes, cancellationToken), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchSettings settings, Sizes sizes, CancellationToken cancellationToken)
    {
        var report = new BenchReport("runtime", settings.Quick);
        var scenarios = new List<(string Name, BenchRunner.Scenario<RuntimeBenchContext> Run)>();
        foreach (int level in ConcurrencyLevels)
        {
            scenarios.Add(($"grain calls and raw echo, concurrency {level}", (c, r, ct) => CallScenario.RunAsync(c, level, r, ct)));
        }

        scenarios.Add(("observer pushes", ObserverPushScenario.RunAsync));

        report.Machine = await MachineInfo.CollectAsync(cancellationToken).ConfigureAwait(false);
        string loadBefore = LoadAverage();
        AnsiConsole.MarkupLine("[grey]Starting the in-process silo, its client and the echo server…[/]");
        await using (InProcessSilo silo = await InProcessSilo.StartAsync(sizes.CallTimeout, cancellationToken).ConfigureAwait(false))
        await using (var echo = EchoServer.Start())
        {
            var context = new RuntimeBenchContext(
                silo.Client, echo, settings.Quick, sizes.PayloadBytes, sizes.Rounds, sizes.Warmup, sizes.Duration, sizes.CallTimeout, sizes.Pushes);
            double activation = await ActivateAsync(context, cancellationToken).ConfigureAwait(false);
            report.Set("payload_bytes", sizes.PayloadBytes);
            report.Set("rounds", sizes.Rounds);
            report.Set("window_s", sizes.Duration.TotalSeconds);
            report.Set("warmup_s", sizes.Warmup.TotalSeconds);
            report.Set("activations", silo.Silo.ActivationCount);
            report.Set("activate_1000_grains_ms", activation);
            report.Note(
                $"Everything in this one process on {Environment.ProcessorCount} cores: a silo (Microsoft.Extensions.Hosting, UseLocalhostClustering, " +
                $"gateway on a free loopback port, workstation non-concurrent GC), one ClusterClient connected through the gateway (one TCP connection), " +
                "and the raw echo server, so the client, the silo and the anchor share the same cores. Before the first level, one call to each of the " +
                $"{RuntimeBenchContext.GrainKeys} grains activated them ({Format.Ms(activation)} for all, 1000 concurrent calls).");
            report.Note(
                $"Grain calls: IPingGrain.Ping(byte[{sizes.PayloadBytes}]) returns the payload (a plain, non-reentrant grain). For each concurrency N " +
                $"(1, 100, 1000), N workers call back to back (closed loop), worker i on grain ping-(i mod {RuntimeBenchContext.GrainKeys}) through a " +
                $"reference got once. {sizes.Rounds} round(s) per level, each a grain run then the raw echo run(s), each run a {sizes.Warmup.TotalSeconds:0.#} s " +
                $"warm-up then a {sizes.Duration.TotalSeconds:0.#} s window; a side's rounds are pooled (calls_per_sec_cN_by_round shows each). Calls/s = " +
                "calls completed in the windows / their total length; latency = Stopwatch timestamps just before the call and just after its result; percentiles are " +
                $"nearest-rank over every call of the windows. Client response timeout {sizes.CallTimeout.TotalSeconds:0.#} s. Cross-check: " +
                "grain_invocations_in_window_cN counts Ping invocations inside the grains during the window (it matches calls_cN to within N per round).");
            report.Note(
                "Raw echo anchor, alternating with the grain side in every round with the same workers, warm-up and window: a loopback TCP server " +
                $"echoing frames of a 4-byte length + {sizes.PayloadBytes}-byte payload. At N = 1 one outstanding request on its own socket (send, then " +
                "receive the whole echo, on the caller's flow): the anchor uses blocking Send/Receive on the client and a dedicated blocking thread " +
                "on the server (the bare loopback round trip, no epoll or thread-pool wake-up); the async-socket echo (SendAsync/ReceiveAsync, " +
                "PipeReader/PipeWriter server) is shown for information. At N = 100 and 1000 all workers share one connection to the async server " +
                "(one flush per read): requests go through a channel to a write loop that flushes when the channel is empty, and a read loop " +
                "completes them in FIFO order (thread-pool continuations), the same shape as the runtime's connection.");
            await BenchRunner.RunScenariosAsync(scenarios, context, report, cancellationToken).ConfigureAwait(false);
            report.Set("runtime_warnings_logged", silo.Logs.Count);
            report.Note(
                silo.Logs.Count == 0
                    ? "The silo and the client logged no warning or error during the run."
                    : $"The silo and the client logged {silo.Logs.Count} warning(s)/error(s); the first: " + string.Join(" | ", silo.Logs.First));
        }

        report.Note(
            $"Load average (1/5/15 min) before the run: {loadBefore}; after: {LoadAverage()}. Other work on this {Environment.ProcessorCount}-core " +
            "machine competes with the benchmark, so figures vary between runs.");
        return await BenchRunner.FinishAsync(report, settings.OutputDirectory, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Activates every grain the workers use (one call each, all at once) and returns how long it took, in ms.</summary>
    private static async Task<double> ActivateAsync(RuntimeBenchContext context, CancellationToken cancellationToken)
    {
        byte[] payload = context.NewPayload(0);
        long start = Stopwatch.GetTimestamp();
        Task<byte[]>[] calls = [.. Enumerable.Range(0, RuntimeBenchContext.GrainKeys)
            .Select(i => context.Client.GetGrain<IPingGrain>(RuntimeBenchContext.GrainKey(i)).Ping(payload))];
        await Task.WhenAll(calls).WaitAsync(context.DrainLimit, cancellationToken).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static string LoadAverage()
    {
        const string File = "/proc/loadavg";
        return System.IO.File.Exists(File) ? string.Join(' ', System.IO.File.ReadAllText(File).Split(' ').Take(3)) : "unknown";
    }

    private sealed record Sizes(int Rounds, TimeSpan Duration, TimeSpan Warmup, int PayloadBytes, int Pushes, TimeSpan CallTimeout)
    {
        /// <exception cref="ArgumentException">A size is out of range.</exception>
        public void Validate()
        {
            if (Rounds is < 1 or > 100)
            {
                throw new ArgumentException("--rounds must be between 1 and 100.");
            }

            if (Duration < TimeSpan.FromSeconds(0.1))
            {
                throw new ArgumentException("--seconds must be at least 0.1.");
            }

            if (Warmup < TimeSpan.Zero)
            {
                throw new ArgumentException("--warmup-seconds must not be negative.");
            }

            if (PayloadBytes is < 0 or > 1024 * 1024)
            {
                throw new ArgumentException("--payload-bytes must be between 0 and 1 MiB (1048576).");
            }

            if (Pushes < 1_000)
            {
                throw new ArgumentException("--pushes must be at least 1000.");
            }

            if (CallTimeout < TimeSpan.FromSeconds(1))
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"--call-timeout-seconds must be at least 1 (got {CallTimeout.TotalSeconds})."));
            }
        }
    }
}
