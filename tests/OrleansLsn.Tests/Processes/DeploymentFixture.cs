using OrleansLsn.Silo.Local;
using Xunit;

namespace OrleansLsn.Tests.Processes;

/// <summary>
/// A whole cluster of real silo processes of <c>src/Silo</c> (two per region, PostgreSQL membership, mutual TLS) on its
/// own local primary and standbys, and a client through the membership table's gateway list. Tests kill and start
/// silos; each leaves two live silos per region behind.
/// </summary>
public sealed class DeploymentFixture : IAsyncLifetime
{
    public const string Slot = "proc_failover";
    public const string Table = "proc_failover_rows";

    private LocalDeployment? _deployment;
    private OrleansLsn.Client.OrleansLsnClient? _client;

    public LocalDeployment Deployment => _deployment ?? throw new InvalidOperationException("The deployment did not start.");

    public IClusterClient Client => (_client ?? throw new InvalidOperationException("The client did not start.")).Cluster;

    public async ValueTask InitializeAsync()
    {
        var options = new LocalDeploymentOptions { Name = "proc-tests" };
        options.Slots.Add((Slot, "proc_failover_pub", Table));
        options.SiloSettings["OrleansLsn:Replication:SubscriberTimeout"] = "00:00:05";
        options.SiloSettings["OrleansLsn:Replication:Pump:MonitorInterval"] = "00:00:00.200";
        options.SiloSettings["OrleansLsn:Replication:Pump:ReconnectInitialDelay"] = "00:00:00.050";
        options.SiloSettings["OrleansLsn:Replication:Pump:ReconnectMaxDelay"] = "00:00:00.500";
        options.PostgresSettings["wal_sender_timeout"] = "'5s'";
        // Before the roles are applied: the slot's publication is made for the silo role by the table's owner.
        options.SetupSql.Add($"create table {Table}(id bigint primary key, payload text)");
        _deployment = await LocalDeployment.StartAsync(options, line => TestContext.Current.SendDiagnosticMessage(line), TestContext.Current.CancellationToken);

        _client = await LocalClient.ConnectAsync(_deployment.ClientSettings, TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        if (_deployment is not null)
        {
            await _deployment.DisposeAsync();
        }
    }

    /// <summary>The live silos of <paramref name="region"/>.</summary>
    public IReadOnlyList<SiloProcess> LiveSilos(string region) => [.. Deployment.Silos.Where(s => s.Region == region && !s.HasExited)];

    /// <summary>Starts silos until <paramref name="region"/> has two live ones again.</summary>
    public async Task RestoreAsync(string region)
    {
        while (LiveSilos(region).Count < 2)
        {
            SiloProcess silo = Deployment.StartSilo(region);
            await silo.WaitHealthyAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DeploymentCollection : ICollectionFixture<DeploymentFixture>
{
    public const string Name = "Silo processes";
}
