using Orleans.TestingHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// One shared cluster of three silos: two in eu-west (watching the first standby), one in us-east (the second standby).
/// Tests that use it are in one collection, so they run one after another and never share a grain key or slot.
/// </summary>
public sealed class ClusterFixture(PostgresFixture postgres) : IAsyncLifetime
{
    public static readonly string[] Regions = [LsnTestCluster.EuWest, LsnTestCluster.EuWest, LsnTestCluster.UsEast];

    /// <summary>The region of every silo started after the first three.</summary>
    public const string LaterRegion = "ap-south";

    private readonly Dictionary<int, string> _laterSilos = Enumerable.Range(3, 20).ToDictionary(i => i, _ => LaterRegion);
    private InProcessTestCluster? _cluster;

    public PostgresFixture Postgres { get; } = postgres;

    public InProcessTestCluster Cluster => _cluster ?? throw new InvalidOperationException("The cluster did not start.");

    /// <summary>The current client (a test may replace it by killing it).</summary>
    public IClusterClient Client => Cluster.Client;

    public async ValueTask InitializeAsync()
    {
        await ReplicationTables.PrepareAsync(Postgres.PrimaryConnectionString, TestSlots.Shared);
        _cluster = await LsnTestCluster.StartAsync(Postgres, Regions, [TestSlots.AlwaysOn], laterSilos: _laterSilos);
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }

        await ReplicationTables.DropAsync(Postgres.PrimaryConnectionString, TestSlots.Shared);
    }

    public string? RegionOfSilo(string address) => LsnTestCluster.RegionOfAddress(Cluster, address, Regions, _laterSilos);

    /// <summary>Starts one more silo, in region <see cref="LaterRegion"/> (a region no other silo has).</summary>
    public Task<Orleans.TestingHost.InProcessSiloHandle> StartSiloInLaterRegionAsync() => Cluster.StartAdditionalSiloAsync();
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "Cluster";
}
