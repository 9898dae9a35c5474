using System.CommandLine;
using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Client;
using OrleansLsn.Silo.Local;
using Spectre.Console;

namespace OrleansLsn.Bench.Failover;

/// <summary>
/// The <c>failover</c> command: <c>kill -9</c> of the silo process hosting a region's tracker, and the time until the
/// region's other silo serves the first <c>Ready</c> wait; with OrleansLsn's membership settings and, in the same run,
/// with Orleans' defaults. Real silo processes, PostgreSQL membership, TLS on.
/// </summary>
internal static class FailoverCommand
{
    private const string Region = "eu-west";

    public static Command Create()
    {
        var common = CommonOptions.WithoutPostgres();
        var rounds = new Option<int?>("--rounds") { Description = "Kills per configuration. Default 5, or 1 with --quick." };
        var command = new Command("failover", "Failover: kill -9 of the silo hosting a tracker until the first Ready wait from the region's other silo, ours vs Orleans' default membership settings; writes failover.json.");
        common.AddTo(command);
        command.Options.Add(rounds);
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            BenchSettings settings;
            int count;
            try
            {
                settings = common.Read(result);
                count = result.GetValue(rounds) ?? (settings.Quick ? 1 : 5);
                if (count < 1 || count > 50)
                {
                    throw new ArgumentException("--rounds must be between 1 and 50.");
                }
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                return BenchRunner.InvalidOption(ex);
            }

            return await BenchRunner.InvokeAsync(() => RunAsync(settings, count, cancellationToken), cancellationToken).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<int> RunAsync(BenchSettings settings, int rounds, CancellationToken cancellationToken)
    {
        var report = new BenchReport("failover", settings.Quick);
        report.Machine = await MachineInfo.CollectAsync(cancellationToken).ConfigureAwait(false);
        var ours = new List<double>();
        var defaults = new List<double>();
        await BenchRunner.RunScenariosAsync<object?>(
            [
                ("failover, OrleansLsn membership settings", (_, r, ct) => MeasureAsync(r, null, rounds, ours, ct)),
                ("failover, Orleans' default membership settings", (_, r, ct) => MeasureAsync(r, OrleansDefaults, rounds, defaults, ct)),
            ],
            null,
            report,
            cancellationToken).ConfigureAwait(false);

        if (ours.Count > 0)
        {
            report.Set("failover_s", Median(ours));
            report.Set("failover_max_s", ours.Max());
            report.Values["failover_rounds_s"] = new System.Text.Json.Nodes.JsonArray([.. ours.Select(v => (System.Text.Json.Nodes.JsonNode?)Math.Round(v, 2))]);
        }

        if (defaults.Count > 0)
        {
            report.Set("failover_orleans_defaults_s", Median(defaults));
            report.Set("failover_orleans_defaults_max_s", defaults.Max());
            report.Values["failover_orleans_defaults_rounds_s"] = new System.Text.Json.Nodes.JsonArray([.. defaults.Select(v => (System.Text.Json.Nodes.JsonNode?)Math.Round(v, 2))]);
        }

        if (ours.Count > 0 && defaults.Count > 0)
        {
            report.AddRow(new ResultRow(
                "kill -9 of the tracker's silo → first Ready from the region's other silo (median, max)",
                $"{Format.Number(Median(ours), "0.0")} s, {Format.Number(ours.Max(), "0.0")} s",
                $"Orleans defaults: {Format.Number(Median(defaults), "0.0")} s, {Format.Number(defaults.Max(), "0.0")} s",
                Format.Ratio(Median(ours), Median(defaults)),
                "faster than Orleans' defaults",
                Median(ours) < Median(defaults),
                "failover_faster_than_defaults"));
        }

        report.Note(
            "Each configuration: a local primary with standbys eu-west and us-east, four silo processes of src/Silo (two per region, PostgreSQL " +
            "membership, mutual TLS), one client through the gateway list. Per round: the client's tracker(eu-west) is activated, the silo " +
            "process hosting it gets SIGKILL, and the client retries RequestAndAwait of an already replayed LSN (2 s wait, each call ended by " +
            "its own token after 4 s) until Ready; the time is from the kill to that Ready. A replacement silo is started and healthy before the next round.");
        report.Note(
            "OrleansLsn settings: ProbeTimeout 1 s, MaxProbeTimeout 2 s, TableRefreshTimeout 5 s, IAmAliveTablePublishTimeout 5 s (others Orleans' " +
            "defaults: 3 missed probes, 2 votes). Orleans defaults: ProbeTimeout 5 s, TableRefreshTimeout 60 s, IAmAliveTablePublishTimeout 30 s, MaxProbeTimeout 20 s.");
        return await BenchRunner.FinishAsync(report, settings.OutputDirectory, cancellationToken).ConfigureAwait(false);
    }

    private static readonly IReadOnlyDictionary<string, string> OrleansDefaults = new Dictionary<string, string>
    {
        ["OrleansLsn:Membership:ProbeTimeout"] = "00:00:05",
        ["OrleansLsn:Membership:MaxProbeTimeout"] = "00:00:20",
        ["OrleansLsn:Membership:TableRefreshTimeout"] = "00:01:00",
        ["OrleansLsn:Membership:IAmAliveTablePublishTimeout"] = "00:00:30",
    };

    private static async Task MeasureAsync(BenchReport report, IReadOnlyDictionary<string, string>? membership, int rounds, List<double> results, CancellationToken cancellationToken)
    {
        var options = new LocalDeploymentOptions { Name = "bench-failover" };
        if (membership is not null)
        {
            foreach ((string key, string value) in membership)
            {
                options.SiloSettings[key] = value;
            }
        }

        await using LocalDeployment deployment = await LocalDeployment.StartAsync(options, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"), cancellationToken).ConfigureAwait(false);
        report.Machine["postgresql_primary"] = deployment.ServerVersion;
        await using OrleansLsnClient client = await LocalClient.ConnectAsync(deployment.ClientSettings, cancellationToken, Microsoft.Extensions.Logging.LogLevel.Error).ConfigureAwait(false);
        await using var primary = new NpgsqlConnection(deployment.Postgres.Primary.ConnectionString);
        await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
        ILsnTrackerGrain tracker = client.Cluster.GetGrain<ILsnTrackerGrain>(Region);
        for (int round = 1; round <= rounds; round++)
        {
            LsnTrackerStatus status = await tracker.GetStatus().WaitAsync(TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            SiloProcess victim = deployment.SiloAt(status.Silo) ?? throw new InvalidOperationException($"No silo process hosts {status.Silo}.");
            Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken).ConfigureAwait(false);
            var sw = Stopwatch.StartNew();
            victim.Kill();
            while (true)
            {
                if (sw.Elapsed > TimeSpan.FromMinutes(5))
                {
                    throw new TimeoutException("No Ready wait within 5 min of the kill.");
                }

                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(TimeSpan.FromSeconds(4));
                try
                {
                    LsnWaitResult result = await tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(2), deadline.Token).ConfigureAwait(false);
                    if (result.IsReady)
                    {
                        break;
                    }
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is OrleansException or TimeoutException or OperationCanceledException)
                {
                    await Task.Delay(50, cancellationToken).ConfigureAwait(false);
                }
            }

            results.Add(sw.Elapsed.TotalSeconds);
            AnsiConsole.MarkupLine($"[grey]  round {round}: killed {Markup.Escape(victim.Name)}, first Ready after {sw.Elapsed.TotalSeconds:0.0} s[/]");
            SiloProcess replacement = deployment.StartSilo(Region);
            await replacement.WaitHealthyAsync(TimeSpan.FromSeconds(90), cancellationToken).ConfigureAwait(false);
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
