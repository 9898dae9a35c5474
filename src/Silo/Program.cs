using System.CommandLine;

namespace OrleansLsn.Silo;

internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("OrleansLsn: read-your-writes LSN tracking across PostgreSQL replicas.");
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(LocalPostgresCommand.Create());
        return await root.Parse(args).InvokeAsync();
    }
}
