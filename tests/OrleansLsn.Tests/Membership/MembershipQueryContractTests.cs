using Npgsql;
using OrleansLsn.Membership;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Membership;

/// <summary>
/// The stored queries against real PostgreSQL, called with the parameters and read the way Orleans' ADO.NET clustering
/// provider 10.4.2 calls and reads them (<see cref="StoredMembershipQueries"/>).
/// </summary>
public sealed class MembershipQueryContractTests(PostgresFixture fixture) : MembershipTestBase(fixture)
{
    private const string Deployment = "cluster-a";

    private StoredMembershipQueries _queries = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        await PostgresMembershipSchema.ApplyAsync(Db, null, Ct);
        _queries = await StoredMembershipQueries.LoadAsync(Db, Ct);
    }

    [Fact]
    public async Task InsertMembershipVersion_Twice_SecondReportsNotInserted()
    {
        Assert.True(await _queries.InsertMembershipVersionAsync(Deployment, Ct));
        Assert.False(await _queries.InsertMembershipVersionAsync(Deployment, Ct));
        Assert.True(await _queries.InsertMembershipVersionAsync("cluster-b", Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);
        Assert.Equal(0, snapshot.Version);
        Assert.Empty(snapshot.Silos);
    }

    [Fact]
    public async Task InsertMembership_ExpectedVersion_InsertsRowAndBumpsVersion()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        SiloRow silo = Silo(11111, StoredMembershipQueries.Joining, proxyPort: 30000);

        Assert.True(await _queries.InsertMembershipAsync(Deployment, silo, version: 0, Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);
        Assert.Equal(1, snapshot.Version);
        Assert.Equal(silo, Assert.Single(snapshot.Silos));
    }

    [Fact]
    public async Task InsertMembership_StaleVersion_ReturnsFalseAndChangesNothing()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, Silo(11111), version: 0, Ct));

        Assert.False(await _queries.InsertMembershipAsync(Deployment, Silo(11112), version: 0, Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);
        Assert.Equal(1, snapshot.Version);
        Assert.Equal(11111, Assert.Single(snapshot.Silos).Port);
    }

    [Fact]
    public async Task InsertMembership_NoVersionRow_ReturnsFalse()
    {
        Assert.False(await _queries.InsertMembershipAsync(Deployment, Silo(11111), version: 0, Ct));
        Assert.Equal(0L, await CountSilosAsync());
    }

    [Fact]
    public async Task InsertMembership_DuplicateSilo_ReturnsFalseKeepsRowAndVersion()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        SiloRow original = Silo(11111, StoredMembershipQueries.Joining);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, original, version: 0, Ct));
        SiloRow duplicate = original with { SiloName = "impostor", Status = StoredMembershipQueries.Active, ProxyPort = 1 };

        // The provider treats false as "not inserted" (the silo re-reads and retries); an exception would be an error.
        Assert.False(await _queries.InsertMembershipAsync(Deployment, duplicate, version: 1, Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);
        Assert.Equal(1, snapshot.Version);
        Assert.Equal(original, Assert.Single(snapshot.Silos));
    }

    [Fact]
    public async Task InsertMembership_SameSiloInAnotherGeneration_IsANewRow()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, Silo(11111, generation: 1), version: 0, Ct));
        Assert.True(await _queries.InsertMembershipAsync(Deployment, Silo(11111, generation: 2), version: 1, Ct));

        Assert.Equal(2, (await _queries.ReadAllAsync(Deployment, Ct)).Silos.Count);
    }

    [Fact]
    public async Task UpdateMembership_TwoWritersSameExpectedVersion_ExactlyOneWins()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        SiloRow silo = Silo(11111, StoredMembershipQueries.Joining);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, silo, version: 0, Ct));

        for (int round = 0; round < 20; round++)
        {
            MembershipSnapshot before = await _queries.ReadAllAsync(Deployment, Ct);
            DateTime at = TruncateToMicroseconds(DateTime.UtcNow);
            SiloRow byA = silo with { Status = StoredMembershipQueries.Active, SuspectTimes = $"a-{round}", IAmAliveTime = at };
            SiloRow byB = silo with { Status = StoredMembershipQueries.ShuttingDown, SuspectTimes = $"b-{round}", IAmAliveTime = at.AddSeconds(1) };

            using var start = new SemaphoreSlim(0);
            Task<bool> a = Task.Run(async () => { await start.WaitAsync(Ct); return await _queries.UpdateMembershipAsync(Deployment, byA, before.Version, Ct); }, Ct);
            Task<bool> b = Task.Run(async () => { await start.WaitAsync(Ct); return await _queries.UpdateMembershipAsync(Deployment, byB, before.Version, Ct); }, Ct);
            start.Release(2);
            bool[] results = await Task.WhenAll(a, b).WaitAsync(TimeSpan.FromSeconds(30), Ct);

            Assert.Equal(1, results.Count(r => r));
            MembershipSnapshot after = await _queries.ReadAllAsync(Deployment, Ct);
            Assert.Equal(before.Version + 1, after.Version);
            Assert.Equal(results[0] ? byA : byB, Assert.Single(after.Silos));
        }
    }

    [Fact]
    public async Task InsertMembership_TwoSilosRacingSameExpectedVersion_ExactlyOneRowAdded()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        for (int round = 0; round < 20; round++)
        {
            MembershipSnapshot before = await _queries.ReadAllAsync(Deployment, Ct);
            SiloRow first = Silo(20000 + (2 * round));
            SiloRow second = Silo(20001 + (2 * round));

            using var start = new SemaphoreSlim(0);
            Task<bool> a = Task.Run(async () => { await start.WaitAsync(Ct); return await _queries.InsertMembershipAsync(Deployment, first, before.Version, Ct); }, Ct);
            Task<bool> b = Task.Run(async () => { await start.WaitAsync(Ct); return await _queries.InsertMembershipAsync(Deployment, second, before.Version, Ct); }, Ct);
            start.Release(2);
            bool[] results = await Task.WhenAll(a, b).WaitAsync(TimeSpan.FromSeconds(30), Ct);

            Assert.Equal(1, results.Count(r => r));
            MembershipSnapshot after = await _queries.ReadAllAsync(Deployment, Ct);
            Assert.Equal(before.Version + 1, after.Version);
            Assert.Equal(before.Silos.Count + 1, after.Silos.Count);
            Assert.Contains(results[0] ? first : second, after.Silos);
            Assert.DoesNotContain(results[0] ? second : first, after.Silos);
        }
    }

    [Fact]
    public async Task UpdateMembership_StaleVersion_ReturnsFalseAndChangesNothing()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        SiloRow silo = Silo(11111, StoredMembershipQueries.Joining);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, silo, version: 0, Ct));

        Assert.False(await _queries.UpdateMembershipAsync(Deployment, silo with { Status = StoredMembershipQueries.Dead }, version: 0, Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);
        Assert.Equal(1, snapshot.Version);
        Assert.Equal(silo, Assert.Single(snapshot.Silos));
    }

    [Fact]
    public async Task UpdateMembership_UnknownSilo_ReturnsFalseAndKeepsVersion()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);

        Assert.False(await _queries.UpdateMembershipAsync(Deployment, Silo(11111), version: 0, Ct));

        Assert.Equal(0, (await _queries.ReadAllAsync(Deployment, Ct)).Version);
    }

    [Fact]
    public async Task UpdateMembership_WritesStatusSuspectTimesAndIAmAliveOnly()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        SiloRow silo = Silo(11111, StoredMembershipQueries.Joining, proxyPort: 30000, at: DateTime.UtcNow.AddMinutes(-1));
        Assert.True(await _queries.InsertMembershipAsync(Deployment, silo, version: 0, Ct));
        SiloRow update = silo with
        {
            Status = StoredMembershipQueries.Active,
            SuspectTimes = "S127.0.0.1:11112:2,2026-01-02 03:04:05.678 GMT",
            IAmAliveTime = TruncateToMicroseconds(DateTime.UtcNow),
            // Not part of UpdateMembershipKey's parameters: must stay as inserted.
            SiloName = "renamed",
            ProxyPort = 1,
        };

        Assert.True(await _queries.UpdateMembershipAsync(Deployment, update, version: 1, Ct));

        SiloRow stored = Assert.Single((await _queries.ReadAllAsync(Deployment, Ct)).Silos);
        Assert.Equal(update with { SiloName = silo.SiloName, ProxyPort = silo.ProxyPort }, stored);

        Assert.True(await _queries.UpdateMembershipAsync(Deployment, update with { SuspectTimes = null }, version: 2, Ct));
        Assert.Null(Assert.Single((await _queries.ReadAllAsync(Deployment, Ct)).Silos).SuspectTimes);
    }

    [Fact]
    public async Task UpdateIAmAlive_ChangesOnlyTheIAmAliveTime()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        SiloRow silo = Silo(11111, proxyPort: 30000, at: DateTime.UtcNow.AddMinutes(-5)) with { SuspectTimes = "votes" };
        SiloRow other = Silo(11112, at: DateTime.UtcNow.AddMinutes(-5));
        Assert.True(await _queries.InsertMembershipAsync(Deployment, silo, version: 0, Ct));
        Assert.True(await _queries.InsertMembershipAsync(Deployment, other, version: 1, Ct));
        Assert.True(await _queries.UpdateMembershipAsync(Deployment, silo, version: 2, Ct));
        DateTime alive = TruncateToMicroseconds(DateTime.UtcNow);

        Assert.Equal(1, await _queries.UpdateIAmAliveAsync(Deployment, silo, alive, Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);
        Assert.Equal(3, snapshot.Version);
        Assert.Contains(silo with { IAmAliveTime = alive }, snapshot.Silos);
        Assert.Contains(other, snapshot.Silos);
    }

    [Fact]
    public async Task MembershipReadRow_ReturnsVersionWithOrWithoutTheSilo()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        SiloRow silo = Silo(11111);
        SiloRow other = Silo(11112);

        MembershipSnapshot none = await _queries.ReadRowAsync(Deployment, silo, Ct);
        Assert.Equal(0, none.Version);
        Assert.Empty(none.Silos);

        Assert.True(await _queries.InsertMembershipAsync(Deployment, silo, version: 0, Ct));
        Assert.True(await _queries.InsertMembershipAsync(Deployment, other, version: 1, Ct));
        MembershipSnapshot one = await _queries.ReadRowAsync(Deployment, silo, Ct);
        Assert.Equal(2, one.Version);
        Assert.Equal(silo, Assert.Single(one.Silos));

        MembershipSnapshot otherGeneration = await _queries.ReadRowAsync(Deployment, silo with { Generation = 9 }, Ct);
        Assert.Equal(2, otherGeneration.Version);
        Assert.Empty(otherGeneration.Silos);
    }

    [Fact]
    public async Task MembershipReadAll_ReturnsVersionOnEveryRowAndOnlyThisDeployment()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        await _queries.InsertMembershipVersionAsync("cluster-b", Ct);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, Silo(11111), version: 0, Ct));
        Assert.True(await _queries.InsertMembershipAsync(Deployment, Silo(11112), version: 1, Ct));
        Assert.True(await _queries.InsertMembershipAsync("cluster-b", Silo(11113), version: 0, Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);

        Assert.Equal(2, snapshot.Version);
        Assert.Equal([11111, 11112], snapshot.Silos.Select(s => s.Port).Order());
        await Assert.ThrowsAsync<InvalidOperationException>(() => _queries.ReadAllAsync("no-such-cluster", Ct));
    }

    [Fact]
    public async Task Gateways_OnlyActiveSilosWithGatewayPortOfThisDeployment()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        await _queries.InsertMembershipVersionAsync("cluster-b", Ct);
        SiloRow[] rows =
        [
            Silo(1, StoredMembershipQueries.Active, proxyPort: 30001),
            Silo(2, StoredMembershipQueries.Active, proxyPort: 0),
            Silo(3, StoredMembershipQueries.Joining, proxyPort: 30003),
            Silo(4, StoredMembershipQueries.Dead, proxyPort: 30004),
            Silo(5, StoredMembershipQueries.ShuttingDown, proxyPort: 30005),
            Silo(6, StoredMembershipQueries.Active, proxyPort: 30006, generation: 7, address: "10.1.2.3"),
        ];
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.True(await _queries.InsertMembershipAsync(Deployment, rows[i], version: i, Ct));
        }

        Assert.True(await _queries.InsertMembershipAsync("cluster-b", Silo(7, StoredMembershipQueries.Active, proxyPort: 30007), version: 0, Ct));

        IReadOnlyList<(string Address, int ProxyPort, int Generation)> gateways = await _queries.GatewaysAsync(Deployment, Ct);

        Assert.Equal([("10.1.2.3", 30006, 7), ("127.0.0.1", 30001, 1)], gateways.Order());
    }

    [Fact]
    public async Task CleanupDefunctSiloEntries_DeletesOnlyNonActiveRowsOlderThanTheDate()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        await _queries.InsertMembershipVersionAsync("cluster-b", Ct);
        DateTime old = DateTime.UtcNow.AddDays(-8);
        DateTime recent = DateTime.UtcNow.AddMinutes(-1);
        SiloRow oldDead = Silo(1, StoredMembershipQueries.Dead, at: old);
        SiloRow oldShuttingDown = Silo(2, StoredMembershipQueries.ShuttingDown, at: old);
        SiloRow oldActive = Silo(3, StoredMembershipQueries.Active, at: old);
        SiloRow recentDead = Silo(4, StoredMembershipQueries.Dead, at: recent);
        SiloRow[] rows = [oldDead, oldShuttingDown, oldActive, recentDead];
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.True(await _queries.InsertMembershipAsync(Deployment, rows[i], version: i, Ct));
        }

        Assert.True(await _queries.InsertMembershipAsync("cluster-b", Silo(5, StoredMembershipQueries.Dead, at: old), version: 0, Ct));

        Assert.Equal(2, await _queries.CleanupDefunctSiloEntriesAsync(Deployment, DateTimeOffset.UtcNow.AddDays(-7), Ct));

        MembershipSnapshot snapshot = await _queries.ReadAllAsync(Deployment, Ct);
        Assert.Equal([oldActive, recentDead], snapshot.Silos.OrderBy(s => s.Port));
        Assert.Equal(4, snapshot.Version);
        Assert.Single((await _queries.ReadAllAsync("cluster-b", Ct)).Silos);
    }

    [Fact]
    public async Task CleanupDefunctSiloEntry_DeletesTheDeadRowOnlyWhileItHoldsTheCapturedValues()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        DateTime old = DateTime.UtcNow.AddDays(-8);
        SiloRow dead = Silo(1, StoredMembershipQueries.Joining, at: old);
        SiloRow active = Silo(2, StoredMembershipQueries.Active, at: old);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, dead, version: 0, Ct));
        Assert.True(await _queries.InsertMembershipAsync(Deployment, active, version: 1, Ct));
        dead = dead with { Status = StoredMembershipQueries.Dead, SuspectTimes = "S127.0.0.1:2:1,2025-01-01 00:00:00.000 GMT" };
        Assert.True(await _queries.UpdateMembershipAsync(Deployment, dead, version: 2, Ct));

        // Changed since it was read: not deleted.
        Assert.Equal(0, await _queries.CleanupDefunctSiloEntryAsync(Deployment, dead with { IAmAliveTime = old.AddSeconds(-1) }, Ct));
        Assert.Equal(0, await _queries.CleanupDefunctSiloEntryAsync(Deployment, dead with { SuspectTimes = null }, Ct));
        // Not dead: never deleted by this query.
        Assert.Equal(0, await _queries.CleanupDefunctSiloEntryAsync(Deployment, active, Ct));

        Assert.Equal(1, await _queries.CleanupDefunctSiloEntryAsync(Deployment, dead, Ct));

        Assert.Equal(active, Assert.Single((await _queries.ReadAllAsync(Deployment, Ct)).Silos));
    }

    [Fact]
    public async Task DeleteMembershipTableEntries_DeletesOnlyThatDeployment()
    {
        await _queries.InsertMembershipVersionAsync(Deployment, Ct);
        await _queries.InsertMembershipVersionAsync("cluster-b", Ct);
        Assert.True(await _queries.InsertMembershipAsync(Deployment, Silo(1), version: 0, Ct));
        Assert.True(await _queries.InsertMembershipAsync("cluster-b", Silo(2), version: 0, Ct));

        await _queries.DeleteMembershipTableEntriesAsync(Deployment, Ct);

        Assert.Equal(0L, await CountSilosAsync(Deployment));
        await Assert.ThrowsAsync<InvalidOperationException>(() => _queries.ReadAllAsync(Deployment, Ct));
        MembershipSnapshot b = await _queries.ReadAllAsync("cluster-b", Ct);
        Assert.Equal(1, b.Version);
        Assert.Equal(2, Assert.Single(b.Silos).Port);

        // The deployment can start again from scratch.
        Assert.True(await _queries.InsertMembershipVersionAsync(Deployment, Ct));
        Assert.Equal(0, (await _queries.ReadAllAsync(Deployment, Ct)).Version);
    }

    private async Task<long> CountSilosAsync(string? deployment = null)
    {
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM orleanslsn_membership_silo WHERE $1::text IS NULL OR deployment_id = $1", conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)deployment ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }
}
