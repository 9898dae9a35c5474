using System.CommandLine;
using OrleansLsn.Database;
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
        Option<int> replayDelay = ReplayDelayOption();
        var command = new Command("cluster", "Start a local OrleansLsn cluster (PostgreSQL primary with a password, standbys eu-west and us-east, two silo processes per region, TLS on) and keep it running until Ctrl-C; prints the client settings and where the connection strings are.")
        {
            replayDelay,
        };
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            int delay = result.GetValue(replayDelay);
            if (CheckReplayDelay(delay) is { } problem)
            {
                Console.Error.WriteLine(problem);
                return 2;
            }

            try
            {
                await using LocalDeployment deployment = await LocalDeployment.StartAsync(DemoOptions(delay), Console.WriteLine, cancellationToken);
                Console.WriteLine();
                PrintClientSettings(deployment);
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

    /// <summary>What a client application needs, as docs/first-client.md consumes it: client settings, the application's
    /// connection strings (files), and the silos' own, labelled as such.</summary>
    internal static void PrintClientSettings(LocalDeployment deployment)
    {
        Console.WriteLine($"The cluster is running: cluster id {LocalDeployment.ClusterId}. A client needs these settings (the OrleansLsn section, here as");
        Console.WriteLine("environment variables; connection strings are in files, mode 600, as they carry this run's PostgreSQL password):");
        foreach ((string key, string? value) in deployment.ClientSettings)
        {
            Console.WriteLine($"  {EnvironmentName(key)}={value}");
        }

        Console.WriteLine("The same client certificate as PEM files, instead of the PFX and its password file:");
        Console.WriteLine($"  {EnvironmentName("OrleansLsn:Tls:CertificatePath")}={deployment.Certificates.CertificatePath("client")}");
        Console.WriteLine($"  {EnvironmentName("OrleansLsn:Tls:KeyPath")}={deployment.Certificates.KeyPath("client")}");
        Console.WriteLine($"Your application's connection strings (files; user {DatabaseOwner}, which owns the tables: use an application role of your own in production):");
        Console.WriteLine($"  primary (writes):  {deployment.PrimaryConnectionStringFile}");
        foreach (string region in deployment.Options.Regions)
        {
            string lag = deployment.Options.ReplayDelays.TryGetValue(region, out TimeSpan d) && d > TimeSpan.Zero
                ? $"  (applies each commit {d.TotalMilliseconds:0} ms late: --replay-delay)"
                : "";
            Console.WriteLine($"  {region} replica:  {deployment.ApplicationReplicaConnectionStringFileOf(region)}{lag}");
        }

        Console.WriteLine("The silos' own connection strings (not for applications):");
        Console.WriteLine($"  silos, primary and membership (role {DatabaseRolesOptions.DefaultSiloRole}): {deployment.SiloConnectionStringFile}");
        Console.WriteLine($"  client membership (role {DatabaseRolesOptions.DefaultClientRole}, the gateway query only): {deployment.ClientConnectionStringFile}");
        foreach (string region in deployment.Options.Regions)
        {
            Console.WriteLine($"  {region} tracker (role {DatabaseRolesOptions.DefaultTrackerRole}, reads no table): {deployment.ReplicaConnectionStringFileOf(region)}");
        }

        Console.WriteLine($"Streamable slot: {DemoSlot} (publication {DemoPublication}, table {DemoTable})");
        Console.WriteLine($"Silo logs: {deployment.Folder}");
    }

    /// <summary>The superuser of the local PostgreSQL, owner of the demo's tables.</summary>
    internal const string DatabaseOwner = "postgres";

    private static string EnvironmentName(string key) => key.Replace(":", "__", StringComparison.Ordinal);

    /// <summary>The region whose standby lags by <c>--replay-delay</c> (the other has no delay, for contrast).</summary>
    internal const string DelayedRegion = "eu-west";

    /// <summary>The default of <c>--replay-delay</c>, in milliseconds.</summary>
    internal const int DefaultReplayDelayMs = 50;

    /// <summary><c>--replay-delay</c>: <c>recovery_min_apply_delay</c> of <see cref="DelayedRegion"/>'s standby.</summary>
    internal static Option<int> ReplayDelayOption() => new("--replay-delay")
    {
        Description = $"Milliseconds {DelayedRegion}'s standby waits before applying each commit (recovery_min_apply_delay), as a replica " +
            $"across a WAN lags; us-east's has no delay, for contrast. 0 turns it off. Default {DefaultReplayDelayMs}.",
        DefaultValueFactory = _ => DefaultReplayDelayMs,
    };

    /// <summary>Checks a <c>--replay-delay</c> value; null when it is fine.</summary>
    internal static string? CheckReplayDelay(int milliseconds) =>
        milliseconds is < 0 or > 60_000 ? $"--replay-delay must be between 0 and 60000 milliseconds; it is {milliseconds}." : null;

    internal static LocalDeploymentOptions DemoOptions(int replayDelayMs = DefaultReplayDelayMs)
    {
        var options = new LocalDeploymentOptions { Name = "cluster", PasswordAuthentication = true };
        options.ReplayDelays[DelayedRegion] = TimeSpan.FromMilliseconds(replayDelayMs);
        options.Slots.Add((DemoSlot, DemoPublication, DemoTable));
        // Before the roles: the slot's publication is made by the table's owner, so the silo role needs no right to.
        options.SetupSql.Add(DemoTableSql);
        return options;
    }
}
