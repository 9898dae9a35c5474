using System.CommandLine;
using OrleansLsn.Bench.Common;
using Spectre.Console;

namespace OrleansLsn.Bench.Tracker;

/// <summary>The <c>tracker</c> command: every tracker scenario in one run on one primary and standby.</summary>
internal static class TrackerCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var samples = new Option<int?>("--samples")
        {
            Description = "Wake-latency samples per side (tracker, limit, tight tracker, busy tracker). Default 2000, or 150 with --quick.",
        };
        var command = new Command("tracker", "LSN tracker: wake latency, standby load and waiter cost; writes tracker.json.");
        common.AddTo(command);
        command.Options.Add(samples);
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            BenchSettings settings;
            int sampleCount;
            try
            {
                settings = common.Read(result);
                sampleCount = result.GetValue(samples) ?? (settings.Quick ? 150 : 2000);
                if (sampleCount < 10)
                {
                    throw new ArgumentException("--samples must be at least 10.");
                }
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                return BenchRunner.InvalidOption(ex);
            }

            return await BenchRunner.InvokeAsync(() => RunAsync(settings, sampleCount, cancellationToken), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchSettings settings, int samples, CancellationToken cancellationToken)
    {
        var report = new BenchReport("tracker", settings.Quick);
        var scenarios = new (string Name, BenchRunner.Scenario<TrackerBenchContext> Run)[]
        {
            ("wake latency", WakeLatencyScenario.RunAsync),
            ("standby load", StandbyLoadScenario.RunAsync),
            ("waiter memory", WaiterMemoryScenario.RunAsync),
            ("waiter throughput", WaiterThroughputScenario.RunAsync),
        };

        AnsiConsole.MarkupLine("[grey]Starting the primary and standby…[/]");
        await using (PostgresTargets targets = await PostgresTargets.OpenAsync(settings, "bench", cancellationToken).ConfigureAwait(false))
        {
            report.Machine = await MachineInfo.CollectAsync(targets.Primary, targets.Standby, cancellationToken).ConfigureAwait(false);
            report.Note($"Servers: {targets.Description}. Every scenario ran in this one process, one after the other, on the same primary and standby.");
            double timerPeriod = (double)report.Machine["timer_period_ms"]!;
            report.Note(
                $"Timer granularity: Task.Delay(1 ms) took {Format.Number(timerPeriod, "0.00")} ms on average here (machine.timer_period_ms). .NET timers " +
                "fire on the runtime's millisecond tick, which on Linux comes from the coarse monotonic clock (kernel tick), so the tracker's 1 ms " +
                $"ActivePollInterval really spaces polls about {Format.Number(timerPeriod, "0.0")} ms apart on this machine (see standby_qps).");
            using var polls = new PollCounter();
            var context = new TrackerBenchContext(targets.Primary, targets.Standby, settings.Quick, samples, polls);
            await BenchRunner.RunScenariosAsync(scenarios, context, report, cancellationToken).ConfigureAwait(false);
        }

        return await BenchRunner.FinishAsync(report, settings.OutputDirectory, cancellationToken).ConfigureAwait(false);
    }
}
