using System.CommandLine;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>cluster</c>: the demo's whole system (local primary, one standby per region, four silo processes with PostgreSQL
/// membership and mutual TLS), kept running for your own clients until Ctrl-C; prints what a client needs.
/// </summary>
internal static class ClusterCommand
{
    internal const string DemoSlot = "orleanslsn_demo";
    internal const string DemoPublication = "orleanslsn_demo_pub";
    internal const string DemoTable = "orleanslsn_demo";

    /// <summary>The demo's table (streamed through <see cref="DemoSlot"/>).</summary>
    internal const string DemoTableSql = $"create table if not exists {DemoTable}(id bigserial primary key, note text not null, region text)";

    internal static Command Create()
    {
        var command = new Command("cluster", "Start a local OrleansLsn cluster (PostgreSQL primary with a password, standbys eu-west and us-east, two silo processes per region, TLS on) and keep it running until Ctrl-C; prints the client settings and where the connection strings are.");
        command.SetAction(async (ParseResult _, CancellationToken cancellationToken) =>
        {
            try
            {
                await using LocalDeployment deployment = await LocalDeployment.StartAsync(DemoOptions(), Console.WriteLine, cancellationToken);
                Console.WriteLine();
                Console.WriteLine("The cluster is running. A client needs these settings (the OrleansLsn section, e.g. as environment variables;");
                Console.WriteLine("connection strings are in files, mode 600, as they carry this run's PostgreSQL password):");
                foreach ((string key, string? value) in deployment.ClientSettings)
                {
                    Console.WriteLine($"  {key.Replace(":", "__", StringComparison.Ordinal)}={value}");
                }

                Console.WriteLine($"Primary:  {deployment.PrimaryConnectionStringFile}");
                Console.WriteLine($"Replicas: eu-west {deployment.ReplicaConnectionStringFileOf("eu-west")}");
                Console.WriteLine($"          us-east {deployment.ReplicaConnectionStringFileOf("us-east")}");
                Console.WriteLine($"Streamable slot: {DemoSlot} (publication {DemoPublication}, table {DemoTable})");
                Console.WriteLine($"Silo logs: {deployment.Folder}");
                Console.WriteLine("Ctrl-C stops everything and removes its folders.");
                Console.Out.Flush();
                await Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
                Console.WriteLine("Stopping the silos (gracefully) and PostgreSQL...");
                return 0;
            }
            catch (LocalPostgresException ex)
            {
                Console.Error.WriteLine($"Could not start the local PostgreSQL: {ex.Message}");
                return 3;
            }
        });
        return command;
    }

    internal static LocalDeploymentOptions DemoOptions()
    {
        var options = new LocalDeploymentOptions { Name = "cluster", PasswordAuthentication = true };
        options.Slots.Add((DemoSlot, DemoPublication, DemoTable));
        // Before the roles: the slot's publication is made by the table's owner, so the silo role needs no right to.
        options.SetupSql.Add(DemoTableSql);
        return options;
    }
}
