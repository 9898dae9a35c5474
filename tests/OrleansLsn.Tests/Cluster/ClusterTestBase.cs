using Npgsql;
using OrleansLsn.Client;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>Helpers shared by the tests that run against a test cluster.</summary>
public abstract class ClusterTestBase(ClusterFixture fixture)
{
    protected ClusterFixture Fixture { get; } = fixture;

    protected IClusterClient Client => Fixture.Client;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected string StandbyOf(string region) =>
        region == LsnTestCluster.EuWest ? Fixture.Postgres.StandbyConnectionString : Fixture.Postgres.Standby2ConnectionString;

    protected async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        return conn;
    }

    protected static async Task ExecAsync(NpgsqlConnection conn, string sql, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (object arg in args)
        {
            cmd.Parameters.AddWithValue(arg);
        }

        await cmd.ExecuteNonQueryAsync(Ct);
    }

    protected static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (object arg in args)
        {
            cmd.Parameters.AddWithValue(arg);
        }

        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    /// <summary>A table named after the test on the primary (dropped first), <c>(id bigint primary key, payload text)</c>.</summary>
    protected async Task<string> CreateTableAsync(string name)
    {
        string table = "g_" + name.ToLowerInvariant();
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await ExecAsync(primary, $"drop table if exists {table}; create table {table}(id bigint primary key, payload text)");
        return table;
    }

    /// <summary>Inserts one row (autocommit) and returns the LSN a reader must wait for.</summary>
    protected static async Task<Lsn> InsertAsync(NpgsqlConnection primary, string table, long id)
    {
        await ExecAsync(primary, $"insert into {table} values ($1, 'x')", id);
        return await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
    }

    protected async Task<int> ConnectionsOnAsync(string connectionString, string applicationName)
    {
        await using NpgsqlConnection conn = await OpenAsync(connectionString);
        return (int)await ScalarAsync<long>(conn, "select count(*) from pg_stat_activity where application_name = $1", applicationName);
    }

    protected Task ForceCollectionAsync() => Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
}
