using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Runtime.Membership;
using Orleans.Runtime.MembershipService;
using OrleansLsn.Membership;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Membership;

/// <summary>
/// Orleans' own ADO.NET clustering classes (10.4.2, invariant "Npgsql") over our SQL: the membership table a silo uses
/// and the gateway list a client uses, driven directly, without a cluster.
/// </summary>
public sealed class AdoNetProviderTests(PostgresFixture fixture) : MembershipTestBase(fixture)
{
    private const string ClusterId = "provider-cluster";

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        await PostgresMembershipSchema.ApplyAsync(Db, null, Ct);
    }

    [Fact]
    public async Task MembershipTable_Lifecycle_ReadsBackWhatItWrote()
    {
        AdoNetClusteringTable table = await CreateTableAsync();
        MembershipTableData empty = await table.ReadAllAsync(Ct);
        Assert.Equal(0, empty.Version.Version);
        Assert.Empty(empty.Members);

        MembershipEntry entry = Entry(11111, SiloStatus.Joining, proxyPort: 30000);
        Assert.True(await table.InsertRowAsync(entry, empty.Version.Next(), Ct));
        MembershipTableData afterInsert = await table.ReadRowAsync(entry.SiloAddress, Ct);
        Assert.Equal(1, afterInsert.Version.Version);
        AssertSame(entry, Assert.Single(afterInsert.Members).Item1);
        Assert.Equal("1", Assert.Single(afterInsert.Members).Item2);

        DateTime voteTime = DateTime.UtcNow;
        entry.Status = SiloStatus.Active;
        entry.IAmAliveTime = Microseconds(DateTime.UtcNow);
        entry.SuspectTimes =
        [
            Tuple.Create(SiloAddress.New(IPAddress.Loopback, 11112, 7), voteTime),
            Tuple.Create(SiloAddress.New(IPAddress.Parse("10.0.0.9"), 11113, 8), voteTime.AddSeconds(-3)),
        ];
        Assert.True(await table.UpdateRowAsync(entry, "1", afterInsert.Version.Next(), Ct));
        MembershipTableData afterUpdate = await table.ReadAllAsync(Ct);
        Assert.Equal(2, afterUpdate.Version.Version);
        MembershipEntry stored = Assert.Single(afterUpdate.Members).Item1;
        AssertSame(entry, stored);

        DateTime alive = Microseconds(DateTime.UtcNow.AddSeconds(5));
        entry.IAmAliveTime = alive;
        await table.UpdateIAmAliveAsync(entry, Ct);
        MembershipTableData afterAlive = await table.ReadAllAsync(Ct);
        Assert.Equal(2, afterAlive.Version.Version);
        Assert.Equal(alive, Assert.Single(afterAlive.Members).Item1.IAmAliveTime);
    }

    [Fact]
    public async Task MembershipTable_StaleVersionOrDuplicate_FalseNotException()
    {
        AdoNetClusteringTable table = await CreateTableAsync();
        MembershipTableData start = await table.ReadAllAsync(Ct);
        MembershipEntry entry = Entry(11111, SiloStatus.Joining);
        Assert.True(await table.InsertRowAsync(entry, start.Version.Next(), Ct));

        MembershipTableData current = await table.ReadAllAsync(Ct);

        // Stale version: another silo's insert with the version read before ours.
        Assert.False(await table.InsertRowAsync(Entry(11112, SiloStatus.Joining), start.Version.Next(), Ct));
        // Duplicate silo with the current version.
        Assert.False(await table.InsertRowAsync(entry, current.Version.Next(), Ct));
        entry.Status = SiloStatus.Dead;
        Assert.False(await table.UpdateRowAsync(entry, "0", start.Version.Next(), Ct));

        MembershipTableData end = await table.ReadAllAsync(Ct);
        Assert.Equal(1, end.Version.Version);
        Assert.Equal(SiloStatus.Joining, Assert.Single(end.Members).Item1.Status);
    }

    [Fact]
    public async Task MembershipTable_InitializedByTwoSilos_OneVersionRow()
    {
        AdoNetClusteringTable first = await CreateTableAsync();
        AdoNetClusteringTable second = await CreateTableAsync();

        Assert.Equal(0, (await first.ReadAllAsync(Ct)).Version.Version);
        Assert.Equal(0, (await second.ReadAllAsync(Ct)).Version.Version);
        Assert.Equal(1L, await ScalarAsync<long>("SELECT count(*) FROM orleanslsn_membership_deployment"));
    }

    [Fact]
    public async Task CleanupDefunctSiloEntries_WithOptionalQuery_DeletesOnlyOldDeadSilosWithOldVotes()
    {
        AdoNetClusteringTable table = await CreateTableAsync();
        DateTime old = DateTime.UtcNow.AddDays(-10);
        DateTimeOffset cutoff = DateTimeOffset.UtcNow.AddDays(-7);
        MembershipEntry oldDead = Entry(1, SiloStatus.Dead, at: old);
        oldDead.SuspectTimes = [Tuple.Create(SiloAddress.New(IPAddress.Loopback, 2, 1), old)];
        MembershipEntry oldDeadRecentVote = Entry(2, SiloStatus.Dead, at: old);
        oldDeadRecentVote.SuspectTimes = [Tuple.Create(SiloAddress.New(IPAddress.Loopback, 1, 1), DateTime.UtcNow)];
        MembershipEntry oldShuttingDown = Entry(3, SiloStatus.ShuttingDown, at: old);
        MembershipEntry oldActive = Entry(4, SiloStatus.Active, at: old);
        MembershipEntry recentDead = Entry(5, SiloStatus.Dead);
        await WriteAsync(table, oldDead, oldDeadRecentVote, oldShuttingDown, oldActive, recentDead);

        await table.CleanupDefunctSiloEntriesAsync(cutoff, Ct);

        MembershipTableData left = await table.ReadAllAsync(Ct);
        Assert.Equal([2, 3, 4, 5], left.Members.Select(m => m.Item1.SiloAddress.Endpoint.Port).Order());
    }

    [Fact]
    public async Task CleanupDefunctSiloEntries_WithoutOptionalQuery_DeletesOldNonActiveSilos()
    {
        await ExecuteAsync("DELETE FROM OrleansQuery WHERE QueryKey = 'CleanupDefunctSiloEntryKey'");
        AdoNetClusteringTable table = await CreateTableAsync();
        DateTime old = DateTime.UtcNow.AddDays(-10);
        await WriteAsync(table, Entry(1, SiloStatus.Dead, at: old), Entry(3, SiloStatus.ShuttingDown, at: old), Entry(4, SiloStatus.Active, at: old), Entry(5, SiloStatus.Dead));

        await table.CleanupDefunctSiloEntriesAsync(DateTimeOffset.UtcNow.AddDays(-7), Ct);

        MembershipTableData left = await table.ReadAllAsync(Ct);
        Assert.Equal([4, 5], left.Members.Select(m => m.Item1.SiloAddress.Endpoint.Port).Order());
    }

    [Fact]
    public async Task DeleteMembershipTableEntries_OtherClusterUntouched()
    {
        AdoNetClusteringTable table = await CreateTableAsync();
        AdoNetClusteringTable other = await CreateTableAsync("other-cluster");
        await WriteAsync(table, Entry(1, SiloStatus.Active));
        await WriteAsync(other, Entry(2, SiloStatus.Active));

        await table.DeleteMembershipTableEntriesAsync(ClusterId, Ct);

        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM orleanslsn_membership_deployment WHERE deployment_id = '{ClusterId}'"));
        Assert.Single((await other.ReadAllAsync(Ct)).Members);
    }

    [Fact]
    public async Task GatewayListProvider_ListsActiveSilosWithGatewayOfItsCluster()
    {
        AdoNetClusteringTable table = await CreateTableAsync();
        AdoNetClusteringTable other = await CreateTableAsync("other-cluster");
        await WriteAsync(table, Entry(11111, SiloStatus.Active, proxyPort: 30001), Entry(11112, SiloStatus.Active), Entry(11113, SiloStatus.Joining, proxyPort: 30003));
        await WriteAsync(other, Entry(11114, SiloStatus.Active, proxyPort: 30004));
        var gateways = new AdoNetGatewayListProvider(
            NullLogger<AdoNetGatewayListProvider>.Instance,
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new AdoNetClusteringClientOptions { Invariant = "Npgsql", ConnectionString = Db }),
            Options.Create(new GatewayOptions()),
            Options.Create(new ClusterOptions { ClusterId = ClusterId, ServiceId = "svc" }));
        await gateways.InitializeGatewayListProviderAsync(Ct);

        IList<Uri> list = await gateways.GetGatewaysAsync(Ct);

        Assert.Equal(SiloAddress.New(IPAddress.Loopback, 30001, 1).ToGatewayUri(), Assert.Single(list));
    }

    /// <summary>A membership row for a loopback silo on <paramref name="port"/> (times truncated to PostgreSQL's microseconds).</summary>
    internal static MembershipEntry Entry(int port, SiloStatus status, int proxyPort = 0, DateTime? at = null)
    {
        DateTime time = Microseconds(at ?? DateTime.UtcNow);
        return new MembershipEntry
        {
            SiloAddress = SiloAddress.New(IPAddress.Loopback, port, 1),
            Status = status,
            ProxyPort = proxyPort,
            HostName = "host-" + port,
            SiloName = "silo-" + port,
            StartTime = time,
            IAmAliveTime = time,
        };
    }

    private static DateTime Microseconds(DateTime value) => TruncateToMicroseconds(value);

    private static void AssertSame(MembershipEntry expected, MembershipEntry actual)
    {
        Assert.Equal(expected.SiloAddress, actual.SiloAddress);
        Assert.Equal(expected.Status, actual.Status);
        Assert.Equal(expected.ProxyPort, actual.ProxyPort);
        Assert.Equal(expected.HostName, actual.HostName);
        Assert.Equal(expected.SiloName, actual.SiloName);
        Assert.Equal(expected.StartTime, actual.StartTime);
        Assert.Equal(DateTimeKind.Utc, actual.StartTime.Kind);
        Assert.Equal(expected.IAmAliveTime, actual.IAmAliveTime);
        // Votes keep millisecond precision, the provider's text format.
        Assert.Equal(
            expected.SuspectTimes?.Select(v => (v.Item1, LogFormatter.PrintDate(v.Item2))) ?? [],
            actual.SuspectTimes?.Select(v => (v.Item1, LogFormatter.PrintDate(v.Item2))) ?? []);
    }

    /// <summary>Inserts each entry as Joining, then writes its real status and votes, like a silo's life.</summary>
    private async Task WriteAsync(AdoNetClusteringTable table, params MembershipEntry[] entries)
    {
        foreach (MembershipEntry entry in entries)
        {
            MembershipTableData before = await table.ReadAllAsync(Ct);
            SiloStatus status = entry.Status;
            List<Tuple<SiloAddress, DateTime>>? votes = entry.SuspectTimes;
            entry.Status = SiloStatus.Joining;
            entry.SuspectTimes = null;
            Assert.True(await table.InsertRowAsync(entry, before.Version.Next(), Ct));
            entry.Status = status;
            entry.SuspectTimes = votes;
            MembershipTableData inserted = await table.ReadRowAsync(entry.SiloAddress, Ct);
            Assert.True(await table.UpdateRowAsync(entry, Assert.Single(inserted.Members).Item2, inserted.Version.Next(), Ct));
        }
    }

    private async Task<AdoNetClusteringTable> CreateTableAsync(string clusterId = ClusterId)
    {
        var table = new AdoNetClusteringTable(
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new ClusterOptions { ClusterId = clusterId, ServiceId = "svc" }),
            Options.Create(new AdoNetClusteringSiloOptions { Invariant = "Npgsql", ConnectionString = Db }),
            NullLogger<AdoNetClusteringTable>.Instance);
        await table.InitializeMembershipTableAsync(tryInitTableVersion: true, Ct);
        return table;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }
}
