using System.CommandLine;

namespace OrleansLsn.Silo;

internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("OrleansLsn: read-your-writes across PostgreSQL regions and change streaming with backpressure, on Orleans.");
        root.Subcommands.Add(SiloCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(ClusterCommand.Create());
        root.Subcommands.Add(CertificatesCommand.Create());
        root.Subcommands.Add(LocalPostgresCommand.Create());
        root.Subcommands.Add(HealthCheckCommand.Create());
        root.Subcommands.Add(ClientDemoCommand.Create());
        root.Subcommands.Add(DatabaseRolesCommand.Create());

        // SIGTERM and Ctrl-C cancel the command's token; give it time to stop silos and servers gracefully (the default
        // would end the process after 2 s, leaving them to their own watchdogs).
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) };
        return await root.Parse(args).InvokeAsync(invocation);
    }
}
