using System.CommandLine;
using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Silo;

/// <summary><c>local-postgres</c>: starts a throw-away primary and hot standby and keeps them until Ctrl-C.</summary>
internal static class LocalPostgresCommand
{
    internal static Command Create()
    {
        var command = new Command("local-postgres", "Start a throw-away local PostgreSQL primary and hot standby, print their connection strings, and keep them until Ctrl-C (or until this process dies: nothing is left behind).");
        command.SetAction(async (ParseResult _, CancellationToken cancellationToken) =>
        {
            await using LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "local" }, cancellationToken);
            Console.WriteLine($"READY {cluster.Directory}");
            Console.WriteLine($"primary: {cluster.Primary.ConnectionString}");
            Console.WriteLine($"standby: {cluster.Standby!.ConnectionString}");
            Console.Out.Flush();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C: dispose stops both servers.
            }

            return 0;
        });
        return command;
    }
}
