using Npgsql;
using OrleansLsn.Tests.Cluster;

namespace OrleansLsn.Tests.Client;

/// <summary>The primary and both standbys as data sources, for tests of sessions and views on the shared cluster.</summary>
public abstract class ReplicaDataSourcesTestBase : ClusterTestBase, IAsyncDisposable
{
    protected ReplicaDataSourcesTestBase(ClusterFixture fixture)
        : base(fixture)
    {
        PrimarySource = NpgsqlDataSource.Create(fixture.Postgres.PrimaryConnectionString);
        EuWestSource = NpgsqlDataSource.Create(fixture.Postgres.StandbyConnectionString);
        UsEastSource = NpgsqlDataSource.Create(fixture.Postgres.Standby2ConnectionString);
    }

    protected NpgsqlDataSource PrimarySource { get; }

    protected NpgsqlDataSource EuWestSource { get; }

    protected NpgsqlDataSource UsEastSource { get; }

    /// <summary>Both regions' replicas, by region name (a new dictionary each time).</summary>
    protected Dictionary<string, NpgsqlDataSource> Replicas => new()
    {
        [LsnTestCluster.EuWest] = EuWestSource,
        [LsnTestCluster.UsEast] = UsEastSource,
    };

    public async ValueTask DisposeAsync()
    {
        await PrimarySource.DisposeAsync();
        await EuWestSource.DisposeAsync();
        await UsEastSource.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
