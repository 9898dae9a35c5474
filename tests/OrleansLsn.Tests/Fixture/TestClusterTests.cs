using Npgsql;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Fixture;

/// <summary>
/// The test cluster's contract, on the run's backend (local binaries or Docker): what every other test relies on when
/// it pauses replay, stops and starts a standby, restarts the primary or cleans up.
/// </summary>
public sealed class TestClusterTests(PostgresFixture fixture)
{
    // Standby names of the dedicated clusters below: one standby per region, as the system runs.
    private const string EuWest = "eu-west";
    private const string UsEast = "us-east";
    private static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Standby_ReplaysWritesFromPrimary()
    {
        string table = $"t_{nameof(Standby_ReplaysWritesFromPrimary).ToLowerInvariant()}";
        await ExecAsync(fixture.PrimaryConnectionString, $"drop table if exists {table}; create table {table}(v int); insert into {table} values (42)");

        await fixture.WaitForStandbyCatchUpAsync(Ct);
        Assert.Equal(42, await fixture.ScalarOnStandbyAsync<int>($"select v from {table}", Ct));
        Assert.True(await fixture.ScalarOnStandbyAsync<bool>("select pg_is_in_recovery()", Ct));
    }

    [Fact]
    public async Task BothFixtureStandbys_ReplayWritesFromPrimary()
    {
        string table = "t_both_fixture_standbys_replay";
        await ExecAsync(fixture.PrimaryConnectionString, $"drop table if exists {table}; create table {table}(v int); insert into {table} values (42)");

        foreach (string standby in new[] { fixture.StandbyConnectionString, fixture.Standby2ConnectionString })
        {
            await fixture.WaitForStandbyCatchUpAsync(standby, Ct);
            Assert.Equal(42, await PostgresFixture.ScalarAsync<int>(standby, $"select v from {table}", Ct));
            Assert.True(await PostgresFixture.ScalarAsync<bool>(standby, "select pg_is_in_recovery()", Ct));
        }
    }

    [Fact]
    public async Task FixturePrimary_PgStatReplicationListsBothStandbysByName()
    {
        ITestPostgresCluster cluster = fixture.RequireCluster();
        Assert.Equal(fixture.Backend.Backend, cluster.Backend);
        Assert.Equal([PostgresFixture.StandbyName, PostgresFixture.Standby2Name], cluster.Standbys.Select(s => s.Name));

        // Logical replication tests stream from the same primary, so other walsenders may be listed too.
        await Wait.UntilAsync(
            () => StreamingApplicationNames(fixture.PrimaryConnectionString) is var names &&
                  names.Contains(PostgresFixture.StandbyName) && names.Contains(PostgresFixture.Standby2Name),
            CatchUpTimeout,
            () => $"pg_stat_replication to list '{PostgresFixture.StandbyName}' and '{PostgresFixture.Standby2Name}' streaming; it lists [{string.Join(", ", StreamingApplicationNames(fixture.PrimaryConnectionString))}]",
            Ct);
    }

    [Fact]
    public void GetStandby_UnknownName_ThrowsArgumentExceptionNamingTheStandbys()
    {
        ITestPostgresCluster cluster = fixture.RequireCluster();
        Assert.Same(cluster.Standbys[1], cluster.GetStandby(PostgresFixture.Standby2Name));

        var unknown = Assert.Throws<ArgumentException>(() => cluster.GetStandby("nope"));
        Assert.Contains("'nope'", unknown.Message);
        Assert.Contains($"'{PostgresFixture.Standby2Name}'", unknown.Message);
        Assert.Throws<ArgumentException>(() => cluster.GetStandby("primary"));
    }

    [Fact]
    public async Task PausedReplayOnOneStandby_OtherStandbyKeepsReplaying()
    {
        await using ITestPostgresCluster cluster = await StartRegionalClusterAsync("two-pause");
        string primary = cluster.Primary.ConnectionString;
        string euWest = cluster.GetStandby(EuWest).ConnectionString;
        string usEast = cluster.GetStandby(UsEast).ConnectionString;
        await ExecAsync(primary, "create table t(v int)");
        await cluster.WaitForStandbyCatchUpAsync(EuWest, Ct);
        await cluster.WaitForStandbyCatchUpAsync(UsEast, Ct);

        await cluster.PauseReplayAsync(EuWest, Ct);
        await ExecAsync(primary, "insert into t values (1)");

        await cluster.WaitForStandbyCatchUpAsync(UsEast, Ct);
        Assert.Equal(1L, await PostgresFixture.ScalarAsync<long>(usEast, "select count(*) from t", Ct));
        Assert.Equal("not paused", await PostgresFixture.ScalarAsync<string>(usEast, "select pg_get_wal_replay_pause_state()", Ct));
        // eu-west was paused before the insert, so it cannot have replayed it however long us-east took.
        Assert.Equal("paused", await PostgresFixture.ScalarAsync<string>(euWest, "select pg_get_wal_replay_pause_state()", Ct));
        Assert.Equal(0L, await PostgresFixture.ScalarAsync<long>(euWest, "select count(*) from t", Ct));

        await cluster.ResumeReplayAsync(EuWest, Ct);
        await cluster.WaitForStandbyCatchUpAsync(EuWest, Ct);
        Assert.Equal(1L, await PostgresFixture.ScalarAsync<long>(euWest, "select count(*) from t", Ct));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task StoppedStandby_OtherKeepsStreaming_RestartedOneCatchesUp(bool immediate)
    {
        await using ITestPostgresCluster cluster = await StartRegionalClusterAsync(immediate ? "two-kill" : "two-stop");
        string primary = cluster.Primary.ConnectionString;
        ITestPostgresServer euWest = cluster.GetStandby(EuWest);
        ITestPostgresServer usEast = cluster.GetStandby(UsEast);
        await ExecAsync(primary, "create table t(v int)");
        await WaitForStreamingAsync(primary, [EuWest, UsEast]);

        await cluster.StopStandbyAsync(UsEast, immediate, Ct);
        // Its pooled connections died with it; do not hand them out after the restart.
        NpgsqlConnection.ClearPool(new NpgsqlConnection(usEast.ConnectionString));
        Assert.False(usEast.IsRunning);
        Assert.True(euWest.IsRunning);
        await Assert.ThrowsAnyAsync<Exception>(() => ExecAsync(usEast.ConnectionString, "select 1"));
        await WaitForStreamingAsync(primary, [EuWest]);

        await ExecAsync(primary, "insert into t values (7)");
        await cluster.WaitForStandbyCatchUpAsync(EuWest, Ct);
        Assert.Equal(7, await PostgresFixture.ScalarAsync<int>(euWest.ConnectionString, "select v from t", Ct));

        await cluster.StartStandbyAsync(UsEast, Ct);
        Assert.True(usEast.IsRunning);
        await cluster.WaitForStandbyCatchUpAsync(UsEast, Ct);
        Assert.Equal(7, await PostgresFixture.ScalarAsync<int>(usEast.ConnectionString, "select v from t", Ct));
        await WaitForStreamingAsync(primary, [EuWest, UsEast]);
    }

    [Fact]
    public async Task CrashedAndRestartedPrimary_KeepsCommittedRows_StandbysReconnectAndCatchUp()
    {
        await using ITestPostgresCluster cluster = await StartRegionalClusterAsync("primary-restart");
        string primary = cluster.Primary.ConnectionString;
        await ExecAsync(primary, "create table t(v int); insert into t values (1)");
        await WaitForStreamingAsync(primary, [EuWest, UsEast]);

        await cluster.RestartPrimaryAsync(immediate: true, Ct);
        NpgsqlConnection.ClearPool(new NpgsqlConnection(primary));

        Assert.True(cluster.Primary.IsRunning);
        Assert.Equal(1L, await PostgresFixture.ScalarAsync<long>(primary, "select count(*) from t", Ct));
        await ExecAsync(primary, "insert into t values (2)");
        foreach (string standby in new[] { EuWest, UsEast })
        {
            await cluster.WaitForStandbyCatchUpAsync(standby, Ct);
            Assert.Equal(2L, await PostgresFixture.ScalarAsync<long>(cluster.GetStandby(standby).ConnectionString, "select count(*) from t", Ct));
        }

        await WaitForStreamingAsync(primary, [EuWest, UsEast]);
    }

    [Fact]
    public async Task DisposedCluster_LeavesNothingBehind()
    {
        ITestPostgresCluster cluster = await StartRegionalClusterAsync("dispose");
        IReadOnlyList<string> before = await cluster.FindLeftoversAsync(Ct);
        Assert.NotEmpty(before);

        await cluster.DisposeAsync();

        IReadOnlyList<string> after = await cluster.FindLeftoversAsync(Ct);
        Assert.True(after.Count == 0, $"after dispose, still there: {string.Join("; ", after)} (before: {string.Join("; ", before)})");
    }

    private static Task<ITestPostgresCluster> StartRegionalClusterAsync(string name) =>
        TestPostgres.StartClusterAsync(new TestPostgresClusterOptions { Name = name, StandbyNames = [EuWest, UsEast] }, Ct);

    private static async Task ExecAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private static Task WaitForStreamingAsync(string primaryConnectionString, string[] expected) =>
        Wait.UntilAsync(
            () => StreamingApplicationNames(primaryConnectionString).SequenceEqual(expected),
            CatchUpTimeout,
            () => $"pg_stat_replication to list exactly [{string.Join(", ", expected)}] streaming; it lists [{string.Join(", ", StreamingApplicationNames(primaryConnectionString))}]",
            Ct);

    /// <summary>The primary's walsenders in state <c>streaming</c>, by application name, sorted (synchronous: for <c>Wait.UntilAsync</c>).</summary>
    private static string[] StreamingApplicationNames(string primaryConnectionString)
    {
        using var conn = new NpgsqlConnection(primaryConnectionString);
        conn.Open();
        using var cmd = new NpgsqlCommand("select application_name from pg_stat_replication where state = 'streaming' order by application_name collate \"C\"", conn);
        using NpgsqlDataReader reader = cmd.ExecuteReader();
        var names = new List<string>();
        while (reader.Read())
        {
            names.Add(reader.GetString(0));
        }

        return names.ToArray();
    }
}
