using System.CommandLine;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Bench.Replication;
using OrleansLsn.PostgresLocal;
using Spectre.Console;

namespace OrleansLsn.Bench.Snapshot;

/// <summary>The <c>snapshot</c> command: the pump's snapshot-then-stream copy against COPY and pg_dump, and its memory under a slow observer.</summary>
internal static class SnapshotCommand
{
    public static Command Create()
    {
        var common = new CommonOptions(withStandby: false);
        var rows = new Option<int?>("--rows")
        {
            Description = "Rows of the snapshot table (~100 bytes each). Default 1 000 000, or 100 000 with --quick.",
        };
        var runs = new Option<int?>("--runs")
        {
            Description = "Throughput runs per reader (snapshot, COPY, pg_dump); the median is reported. Default 3, or 1 with --quick.",
        };
        var command = new Command(
            "snapshot",
            "Snapshot then stream: the pump's copy of a table against COPY and pg_dump, and memory under a slow observer; writes snapshot.json.");
        common.AddTo(command);
        command.Options.Add(rows);
        command.Options.Add(runs);
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            BenchSettings settings;
            Sizes sizes;
            try
            {
                settings = common.Read(result);
                sizes = new Sizes(result.GetValue(rows) ?? (settings.Quick ? 100_000 : 1_000_000), result.GetValue(runs) ?? (settings.Quick ? 1 : 3));
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
        var report = new BenchReport("snapshot", settings.Quick);
        var scenarios = new (string Name, BenchRunner.Scenario<SnapshotBenchContext> Run)[]
        {
            ("throughput", SnapshotThroughputScenario.RunAsync),
            ("slow observer memory", SlowObserverMemoryScenario.RunAsync),
        };

        string loadBefore = LoadAverage();
        AnsiConsole.MarkupLine("[grey]Starting the primary…[/]");
        await using (ReplicationServer server = await ReplicationServer.OpenAsync(settings.Primary, "bench-snapshot", cancellationToken).ConfigureAwait(false))
        {
            report.Machine = await MachineInfo.CollectAsync(server.ConnectionString, null, cancellationToken).ConfigureAwait(false);
            await using var admin = new NpgsqlConnection(server.ConnectionString);
            await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
            AnsiConsole.MarkupLine($"[grey]Filling the table ({sizes.Rows:N0} rows)…[/]");
            try
            {
                (TimeSpan fill, long tableBytes) = await SnapshotTable.CreateAsync(admin, sizes.Rows, cancellationToken).ConfigureAwait(false);
                var context = new SnapshotBenchContext(server.ConnectionString, PostgresBinaries.FindBinDirectory(), settings.Quick, sizes.Rows, sizes.Runs, tableBytes);
                report.Note(
                    $"Server: {server.Description}. Every scenario ran in this one process, one after the other, on the same primary and the same table " +
                    $"(filled and vacuumed in {Format.Number(fill.TotalSeconds, "0.0")} s before the first).");
                await BenchRunner.RunScenariosAsync(scenarios, context, report, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await SnapshotTable.DropAsync(admin, CancellationToken.None).ConfigureAwait(false);
            }
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

    private sealed record Sizes(int Rows, int Runs)
    {
        /// <exception cref="ArgumentException">A size is too small to measure anything.</exception>
        public void Validate()
        {
            if (Rows < 1000)
            {
                throw new ArgumentException("--rows must be at least 1000.");
            }

            if (Runs < 1)
            {
                throw new ArgumentException("--runs must be at least 1.");
            }
        }
    }
}
