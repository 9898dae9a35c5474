using System.CommandLine;
using OrleansLsn.Bench.Common;
using OrleansLsn.PostgresLocal;
using Spectre.Console;

namespace OrleansLsn.Bench.Replication;

/// <summary>The <c>replication</c> command: every replication pump scenario in one run on one primary.</summary>
internal static class ReplicationCommand
{
    public static Command Create()
    {
        var common = new CommonOptions(withStandby: false);
        var rows = new Option<int?>("--rows")
        {
            Description = "Rows of the throughput workload (one transaction). Default 1 000 000, or 200 000 with --quick.",
        };
        var runs = new Option<int?>("--runs")
        {
            Description = "Throughput runs per consumer (pump, pg_recvlogical, Npgsql loop); the median is reported. Default 5, or 2 with --quick.",
        };
        var backlog = new Option<int?>("--backlog-mb")
        {
            Description = "WAL written while the pump is paused, in MB. Default 1024, or 100 with --quick.",
        };
        var samples = new Option<int?>("--samples")
        {
            Description = "Resume-latency samples per side (pump, Npgsql). Default 200, or 10 with --quick.",
        };
        var command = new Command(
            "replication",
            "Replication pump: throughput against pg_recvlogical, memory and connection while paused under a backlog, resume latency; writes replication.json.");
        common.AddTo(command);
        command.Options.Add(rows);
        command.Options.Add(runs);
        command.Options.Add(backlog);
        command.Options.Add(samples);
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            BenchSettings settings;
            Sizes sizes;
            try
            {
                settings = common.Read(result);
                sizes = new Sizes(
                    result.GetValue(rows) ?? (settings.Quick ? 200_000 : 1_000_000),
                    result.GetValue(runs) ?? (settings.Quick ? 2 : 5),
                    (result.GetValue(backlog) ?? (settings.Quick ? 100 : 1024)) * 1024L * 1024L,
                    result.GetValue(samples) ?? (settings.Quick ? 10 : 200));
                sizes.Validate();
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                return BenchRunner.InvalidOption(ex);
            }

            return await BenchRunner.InvokeAsync(() => RunAsync(settings, sizes, cancellationToken), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchSettings settings, Sizes sizes, CancellationToken cancellationToken)
    {
        var report = new BenchReport("replication", settings.Quick);
        var scenarios = new (string Name, BenchRunner.Scenario<ReplicationBenchContext> Run)[]
        {
            ("throughput", ThroughputScenario.RunAsync),
            ("paused memory", PausedMemoryScenario.RunAsync),
            ("resume latency", ResumeLatencyScenario.RunAsync),
        };

        string loadBefore = LoadAverage();
        AnsiConsole.MarkupLine("[grey]Starting the primary…[/]");
        await using (ReplicationServer server = await ReplicationServer.OpenAsync(settings.Primary, "bench-repl", cancellationToken).ConfigureAwait(false))
        {
            report.Machine = await MachineInfo.CollectAsync(server.ConnectionString, null, cancellationToken).ConfigureAwait(false);
            PgRecvLogical recvLogical = PgRecvLogical.Find(PostgresBinaries.FindBinDirectory(), server.ConnectionString);
            MachineInfo.AddRecvLogical(report, recvLogical);
            var context = new ReplicationBenchContext(
                server.ConnectionString,
                server.LogFile,
                recvLogical,
                server.WalSenderTimeout,
                ReplicationBenchContext.ProtocolFor(server.VersionNumber),
                settings.Quick,
                sizes.Rows,
                sizes.Runs,
                sizes.BacklogBytes,
                sizes.Samples);
            report.Machine["wal_sender_timeout_s"] = context.WalSenderTimeout.TotalSeconds;
            report.Machine["pgoutput_protocol"] = context.ProtocolNumber;
            report.Note($"Server: {server.Description}. Every scenario ran in this one process, one after the other, on the same primary.");
            await BenchRunner.RunScenariosAsync(scenarios, context, report, cancellationToken).ConfigureAwait(false);
        }

        report.Note(
            $"Load average (1/5/15 min) before the run: {loadBefore}; after: {LoadAverage()}. Other work on this 2-core machine (e.g. a test " +
            "suite) competes with PostgreSQL and the benchmark, so figures vary between runs.");
        return await BenchRunner.FinishAsync(report, settings.OutputDirectory, cancellationToken).ConfigureAwait(false);
    }

    private static string LoadAverage()
    {
        const string File = "/proc/loadavg";
        return System.IO.File.Exists(File) ? string.Join(' ', System.IO.File.ReadAllText(File).Split(' ').Take(3)) : "unknown";
    }

    private sealed record Sizes(int Rows, int Runs, long BacklogBytes, int Samples)
    {
        /// <exception cref="ArgumentException">A size is too small to measure anything.</exception>
        public void Validate()
        {
            if (Rows < 1000)
            {
                throw new ArgumentException("--rows must be at least 1000.");
            }

            if (Runs < 2)
            {
                throw new ArgumentException("--runs must be at least 2 (each consumer runs at least twice).");
            }

            if (BacklogBytes < 16L * 1024 * 1024)
            {
                throw new ArgumentException("--backlog-mb must be at least 16.");
            }

            if (Samples < 5)
            {
                throw new ArgumentException("--samples must be at least 5.");
            }
        }
    }
}
