using System.CommandLine;
using OrleansLsn.Bench.Cluster;
using OrleansLsn.Bench.Failover;
using OrleansLsn.Bench.Replication;
using OrleansLsn.Bench.Snapshot;
using OrleansLsn.Bench.Tracker;
using OrleansLsn.Bench.Web;
using Spectre.Console;

namespace OrleansLsn.Bench;

/// <summary>Entry point: one sub-command per area (<c>tracker</c>, <c>replication</c>, <c>failover</c>, <c>cluster</c>, <c>web</c>, <c>snapshot</c>).</summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        if (Console.IsOutputRedirected)
        {
            // Spectre.Console falls back to 80 columns when redirected, which wraps the results table.
            AnsiConsole.Profile.Width = 180;
        }

        var root = new RootCommand(
            "OrleansLsn benchmarks. Each command runs every scenario of its area on one primary (and standby, for the tracker)" +
            ", prints a results table and writes <output>/<area>.json. The exit code is non-zero if any scenario failed to measure.");
        root.Subcommands.Add(TrackerCommand.Create());
        root.Subcommands.Add(ReplicationCommand.Create());
        root.Subcommands.Add(FailoverCommand.Create());
        root.Subcommands.Add(ClusterCommand.Create());
        root.Subcommands.Add(WebCommand.Create());
        root.Subcommands.Add(SnapshotCommand.Create());
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }
}
