using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Npgsql.Replication;
using Orleans.Configuration;
using Orleans.Runtime.Membership;
using Orleans.Runtime.MembershipService;
using OrleansLsn.Client;
using OrleansLsn.Database;
using OrleansLsn.Membership;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using OrleansLsn.Tests.Membership;
using OrleansLsn.Tracking;
using Xunit;

namespace OrleansLsn.Tests.Security;

/// <summary>
/// The least-privilege roles of <see cref="DatabaseRoles"/> on the fixture's real primary and standby: each test gets
/// its own database and its own three roles (named after the test, dropped before and after), with passwords set as
/// SCRAM verifiers computed here (the Docker backend asks for them; the local one trusts local connections).
/// </summary>
public sealed class DatabaseRolesTests(PostgresFixture fixture) : MembershipTestBase(fixture)
{
    private const string ClusterId = "roles-cluster";
    private readonly List<string> _slots = new();
    private string[] _roleNames = [];
    private DatabaseRolesOptions _roles = null!;
    private string _siloPassword = "";
    private string _clientPassword = "";
    private string _trackerPassword = "";

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        string test = GetType().Name + "_" + (TestContext.Current.TestMethod?.MethodName ?? "unknown");
        string prefix = "r" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(test)))[..10];
        _siloPassword = RandomNumberGenerator.GetHexString(24, lowercase: true);
        _clientPassword = RandomNumberGenerator.GetHexString(24, lowercase: true);
        _trackerPassword = RandomNumberGenerator.GetHexString(24, lowercase: true);
        _roles = new DatabaseRolesOptions
        {
            SiloRole = prefix + "_silo",
            ClientRole = prefix + "_client",
            TrackerRole = prefix + "_tracker",
            SiloPasswordVerifier = ScramVerifier.Compute(_siloPassword),
            ClientPasswordVerifier = ScramVerifier.Compute(_clientPassword),
            TrackerPasswordVerifier = ScramVerifier.Compute(_trackerPassword),
        };
        // Kept apart: tests change _roles (an invalid name, say), cleanup drops what was created.
        _roleNames = [_roles.SiloRole, _roles.ClientRole, _roles.TrackerRole];
        await DropRolesAsync();
        await ExecuteAsync(Db, "CREATE TABLE app_orders (id bigint PRIMARY KEY, note text)");
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (string slot in _slots)
        {
            await ExecuteAsync(Fixture.PrimaryConnectionString, $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'");
        }

        // The database goes first: it holds the roles' privileges; then the roles can be dropped.
        await base.DisposeAsync();
        await DropRolesAsync();
    }

    private string SiloRole => As(Db, _roles.SiloRole, _siloPassword);

    private string ClientRole => As(Db, _roles.ClientRole, _clientPassword);

    private string DatabaseName => new NpgsqlConnectionStringBuilder(Db).Database!;

    [Fact]
    public async Task ClientRole_CannotWriteOrReadMembershipRowsNorReplicate_ButRunsTheGatewayQuery()
    {
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);
        AdoNetClusteringTable siloTable = await MembershipTableAsync(SiloRole);
        MembershipTableData start = await siloTable.ReadAllAsync(Ct);
        MembershipEntry gateway = Entry(11111, SiloStatus.Active, proxyPort: 30001);
        Assert.True(await siloTable.InsertRowAsync(gateway, start.Version.Next(), Ct));

        await AssertRefusedAsync(ClientRole, $"INSERT INTO orleanslsn_membership_silo (deployment_id, address, port, generation, silo_name, host_name, status, start_time, i_am_alive_time) VALUES ('{ClusterId}', '10.0.0.1', 1, 1, 'x', 'x', 3, now(), now())");
        await AssertRefusedAsync(ClientRole, $"UPDATE orleanslsn_membership_deployment SET version = version + 1 WHERE deployment_id = '{ClusterId}'");
        await AssertRefusedAsync(ClientRole, "UPDATE orleanslsn_membership_silo SET status = 6");
        await AssertRefusedAsync(ClientRole, "DELETE FROM orleanslsn_membership_silo");
        await AssertRefusedAsync(ClientRole, "SELECT count(*) FROM orleanslsn_membership_silo");
        await AssertRefusedAsync(ClientRole, "UPDATE OrleansQuery SET QueryText = 'SELECT 1'");
        await AssertRefusedAsync(ClientRole, "SELECT count(*) FROM app_orders");
        await AssertRefusedAsync(ClientRole, "CREATE TABLE client_was_here (id int)");

        await using (var replication = new LogicalReplicationConnection(ClientRole))
        {
            PostgresException refused = await Assert.ThrowsAsync<PostgresException>(() => replication.Open(Ct));
            Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);
        }

        // What an Orleans client does with it: its gateway list provider loads the queries and lists the gateways.
        var gateways = new AdoNetGatewayListProvider(
            NullLogger<AdoNetGatewayListProvider>.Instance,
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new AdoNetClusteringClientOptions { Invariant = "Npgsql", ConnectionString = ClientRole }),
            Options.Create(new GatewayOptions()),
            Options.Create(new ClusterOptions { ClusterId = ClusterId, ServiceId = "svc" }));
        await gateways.InitializeGatewayListProviderAsync(Ct);
        Assert.Equal(SiloAddress.New(IPAddress.Loopback, 30001, 1).ToGatewayUri(), Assert.Single(await gateways.GetGatewaysAsync(Ct)));
        Assert.True(await PostgresMembershipSchema.IsAppliedAsync(ClientRole, null, Ct));

        // Nobody but the two roles may call the gateway function (it runs with its owner's rights).
        Assert.False(await ScalarAsync<bool>(Db, $"SELECT has_function_privilege('{_roles.TrackerRole}', 'orleanslsn_membership_gateways(text, integer)', 'EXECUTE')"));
        Assert.False(await ScalarAsync<bool>(Db, "SELECT has_function_privilege('public', 'orleanslsn_membership_gateways(text, integer)', 'EXECUTE')"));
    }

    [Fact]
    public async Task SiloRole_WritesMembershipThroughOrleans_AndStartsWithoutDdlWhenTheSchemaIsCurrent()
    {
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);

        var logger = new RecordingLogger();
        await PostgresMembershipSchema.ApplyAsync(SiloRole, logger, Ct);
        Assert.Equal(1, logger.Count(PostgresMembershipSchema.EventIds.AlreadyPresent));

        AdoNetClusteringTable table = await MembershipTableAsync(SiloRole);
        MembershipTableData start = await table.ReadAllAsync(Ct);
        MembershipEntry entry = Entry(11111, SiloStatus.Joining, proxyPort: 30000);
        Assert.True(await table.InsertRowAsync(entry, start.Version.Next(), Ct));
        MembershipTableData inserted = await table.ReadRowAsync(entry.SiloAddress, Ct);
        entry.Status = SiloStatus.Active;
        Assert.True(await table.UpdateRowAsync(entry, Assert.Single(inserted.Members).Item2, inserted.Version.Next(), Ct));
        await table.UpdateIAmAliveAsync(entry, Ct);
        Assert.Equal(SiloStatus.Active, Assert.Single((await table.ReadAllAsync(Ct)).Members).Item1.Status);

        // The replication grains' subscribers: remembered and forgotten by the silo role, out of the client role's reach.
        await ExecuteAsync(SiloRole, "INSERT INTO orleanslsn_replication_subscribers (slot_name, subscriber) VALUES ('roles_slot', 'observer'); DELETE FROM orleanslsn_replication_subscribers WHERE slot_name = 'roles_slot'");
        await AssertRefusedAsync(ClientRole, "SELECT count(*) FROM orleanslsn_replication_subscribers");
        await AssertRefusedAsync(SiloRole, "CREATE TABLE silo_was_here (id int)");
        await AssertRefusedAsync(SiloRole, "UPDATE OrleansQuery SET QueryText = 'SELECT 1'");
        await AssertRefusedAsync(SiloRole, "SELECT count(*) FROM app_orders");
    }

    [Fact]
    public async Task SiloRole_SchemaOutOfDateOrMissing_ClearMembershipSchemaException()
    {
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);
        await ExecuteAsync(Db, "UPDATE OrleansQuery SET QueryText = 'SELECT 1' WHERE QueryKey = 'GatewaysQueryKey'");

        MembershipSchemaException outdated = await Assert.ThrowsAsync<MembershipSchemaException>(() => PostgresMembershipSchema.ApplyAsync(SiloRole, null, Ct));
        Assert.Contains("out of date", outdated.Message, StringComparison.Ordinal);
        Assert.Contains($"role \"{_roles.SiloRole}\"", outdated.Message, StringComparison.Ordinal);
        Assert.Contains("database-roles --apply", outdated.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(_siloPassword, outdated.Message, StringComparison.Ordinal);
        Assert.Equal("SELECT 1", await ScalarAsync<string>(Db, "SELECT QueryText FROM OrleansQuery WHERE QueryKey = 'GatewaysQueryKey'"));

        await ExecuteAsync(Db, "DROP TABLE orleanslsn_membership_silo, orleanslsn_membership_deployment, OrleansQuery CASCADE");
        MembershipSchemaException missing = await Assert.ThrowsAsync<MembershipSchemaException>(() => PostgresMembershipSchema.ApplyAsync(SiloRole, null, Ct));
        Assert.Contains($"database \"{DatabaseName}\" is missing", missing.Message, StringComparison.Ordinal);
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, Assert.IsType<PostgresException>(missing.InnerException).SqlState);

        // The owner repairs it; the silo role starts again.
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);
        await PostgresMembershipSchema.ApplyAsync(SiloRole, null, Ct);
    }

    [Fact]
    public async Task SiloRoleWithoutReplication_PumpFailsWithPermissionDeniedNamingIt_ThenStreamsOnceGranted_WithoutTableRights()
    {
        string slot = "s_" + _roles.SiloRole;
        string publication = "p_" + _roles.SiloRole;
        _slots.Add(slot);
        _roles.Publications.Add(new DatabasePublication(publication, ["public.app_orders"]));
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);
        await ExecuteAsync(Db, $"ALTER ROLE {_roles.SiloRole} NOREPLICATION");

        var options = new ReplicationPumpOptions
        {
            ConnectionString = SiloRole,
            SlotName = slot,
            PublicationName = publication,
            CreatePublication = false,
            MonitorInterval = TimeSpan.FromMilliseconds(200),
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(50),
            ReconnectMaxDelay = TimeSpan.FromMilliseconds(300),
        };
        options.PublicationTables.Add("public.app_orders");
        await using var pump = new ReplicationPump(options);
        var received = new List<string>();
        await using ReplicationSubscription subscription = pump.Subscribe((batch, _) =>
        {
            lock (received)
            {
                received.AddRange(batch.Changes.Select(c => c["id"]!));
            }

            return Task.CompletedTask;
        });
        pump.Start();

        await Wait.UntilAsync(() => pump.Status.LastErrorKind == ReplicationErrorKind.PermissionDenied, TimeSpan.FromSeconds(30), () => $"a permission error; status {pump.Status}", Ct);
        string error = pump.Status.LastError!;
        Assert.Contains("REPLICATION", error, StringComparison.Ordinal);
        Assert.Contains($"role \"{_roles.SiloRole}\"", error, StringComparison.Ordinal);
        Assert.Contains(slot, error, StringComparison.Ordinal);
        Assert.Equal(0L, await ScalarAsync<long>(Db, $"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"));

        // Granting the attribute is enough: the pump retries, creates the slot and streams the owner's publication
        // although the silo role may not read the table.
        await ExecuteAsync(Db, $"ALTER ROLE {_roles.SiloRole} REPLICATION");
        await Wait.UntilAsync(() => pump.Status is { State: ReplicationState.Streaming, ServerPid: not null }, TimeSpan.FromSeconds(30), () => $"streaming; status {pump.Status}", Ct);
        await AssertRefusedAsync(SiloRole, "SELECT count(*) FROM app_orders");
        await ExecuteAsync(Db, "INSERT INTO app_orders VALUES (1, 'one'), (2, 'two')");
        await Wait.UntilAsync(() => { lock (received) { return received.Count == 2; } }, TimeSpan.FromSeconds(30), () => $"2 rows streamed; got {received.Count}; status {pump.Status}", Ct);
        Assert.Equal(["1", "2"], received);
    }

    [Fact]
    public async Task TrackerRole_ReleasesAWaitOnTheStandby_WithNoTableRights()
    {
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);
        string standby = new NpgsqlConnectionStringBuilder(Fixture.StandbyConnectionString) { Database = DatabaseName }.ConnectionString;
        await Fixture.WaitForStandbyCatchUpAsync(Ct);
        string tracker = As(standby, _roles.TrackerRole, _trackerPassword);

        await AssertRefusedAsync(tracker, "SELECT count(*) FROM app_orders");
        await AssertRefusedAsync(tracker, "SELECT count(*) FROM orleansquery");
        await AssertRefusedAsync(As(Db, _roles.TrackerRole, _trackerPassword), "SELECT count(*) FROM orleanslsn_membership_silo");
        Assert.True(await ScalarAsync<bool>(tracker, "SELECT pg_is_in_recovery()"));

        await using var engine = new LsnTracker("roles", new LsnTrackerOptions { ReplicaConnectionString = tracker });
        engine.Start();
        await using var primary = new NpgsqlConnection(Db);
        await primary.OpenAsync(Ct);
        await using (var insert = new NpgsqlCommand("INSERT INTO app_orders VALUES (42, 'tracked')", primary))
        {
            await insert.ExecuteNonQueryAsync(Ct);
        }

        Lsn written = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
        LsnWaitResult result = await engine.RequestAndAwaitAsync(written, TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(LsnWaitOutcome.Ready, result.Outcome);
        Assert.True(result.ReplayLsn >= written, $"replay {result.ReplayLsn} before the write {written}");
        // The wait can be released by the first replay read, before the engine has called itself healthy.
        await Wait.UntilAsync(() => engine.Health.Status == TrackerHealthStatus.Healthy, TimeSpan.FromSeconds(10), () => $"a healthy tracker; {engine.Health.Status}: {engine.Health.LastError}", Ct);
    }

    [Fact]
    public async Task GeneratedSql_AppliedTwice_SameRolesAndGrants()
    {
        _roles.Publications.Add(new DatabasePublication("p_" + _roles.ClientRole, ["app_orders"]));
        _slots.Clear();
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);
        string first = await RolesFingerprintAsync();
        await DatabaseRoles.ApplyAsync(Db, _roles, null, Ct);
        Assert.Equal(first, await RolesFingerprintAsync());

        // The printed form (what an operator runs) applies cleanly over it too, and changes nothing either.
        var printed = new DatabaseRolesOptions
        {
            SiloRole = _roles.SiloRole,
            ClientRole = _roles.ClientRole,
            TrackerRole = _roles.TrackerRole,
            SiloPasswordVerifier = _roles.SiloPasswordVerifier,
            ClientPasswordVerifier = _roles.ClientPasswordVerifier,
            TrackerPasswordVerifier = _roles.TrackerPasswordVerifier,
            Database = DatabaseName,
        };
        printed.Publications.Add(_roles.Publications[0]);
        await ExecuteAsync(Db, "BEGIN;\n" + PostgresMembershipSchema.SetupSql + "\n" + DatabaseRoles.GenerateSql(printed) + "COMMIT;");
        Assert.Equal(first, await RolesFingerprintAsync());
        Assert.Contains("silo=t/f/t", first, StringComparison.Ordinal);
        Assert.Contains("client=t/f/f", first, StringComparison.Ordinal);
        Assert.Contains("tracker=t/f/f", first, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Robert'); DROP TABLE x; --")]
    [InlineData("UpperCase")]
    [InlineData("pg_monitor")]
    [InlineData("public")]
    [InlineData("")]
    [InlineData("9lives")]
    [InlineData("a_name_that_is_far_too_long_for_postgresql_which_truncates_at_63_bytes")]
    public async Task InvalidRoleName_RefusedWithAClearError_BeforeAnySql(string name)
    {
        _roles.ClientRole = name;

        ArgumentException generated = Assert.Throws<ArgumentException>(() => DatabaseRoles.GenerateSql(_roles));
        Assert.Contains("client role: ", generated.Message, StringComparison.Ordinal);
        Assert.Contains("role name", generated.Message, StringComparison.Ordinal);
        // Refused before connecting: this host does not exist.
        ArgumentException applied = await Assert.ThrowsAsync<ArgumentException>(() => DatabaseRoles.ApplyAsync("Host=nowhere.invalid;Username=x", _roles, null, Ct));
        Assert.Equal(generated.Message, applied.Message);
    }

    [Fact]
    public void SameRoleTwice_OrAPlainPassword_Refused()
    {
        _roles.TrackerRole = _roles.ClientRole;
        Assert.Contains("three different roles", Assert.Throws<ArgumentException>(() => DatabaseRoles.GenerateSql(_roles)).Message, StringComparison.Ordinal);

        _roles.TrackerRole = "t_" + _roles.ClientRole;
        _roles.SiloPasswordVerifier = "hunter2";
        string message = Assert.Throws<ArgumentException>(() => DatabaseRoles.GenerateSql(_roles)).Message;
        Assert.Contains("SCRAM-SHA-256 verifier", message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScramVerifier_EqualsWhatPostgreSqlComputes_ForTheSameSalt()
    {
        string role = _roles.TrackerRole;
        string password = "Pa55-word_" + RandomNumberGenerator.GetHexString(8, lowercase: true);
        await ExecuteAsync(Db, $"SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{password}'");
        string stored = await ScalarAsync<string>(Db, $"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'");

        // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
        string[] parts = stored.Split('$');
        string[] head = parts[1].Split(':');
        string ours = ScramVerifier.Compute(password, Convert.FromBase64String(head[1]), int.Parse(head[0], System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(stored, ours);
        Assert.NotEqual(ScramVerifier.Compute(password), ScramVerifier.Compute(password)); // a new salt each time
        Assert.Throws<ArgumentException>(() => ScramVerifier.Compute("with space"));
    }

    private async Task<string> RolesFingerprintAsync() => await ScalarAsync<string>(Db, $"""
        SELECT string_agg(line, E'\n' ORDER BY line) FROM (
            SELECT format('%s=%s/%s/%s super=%s createdb=%s createrole=%s bypassrls=%s password=%s',
                          CASE rolname WHEN '{_roles.SiloRole}' THEN 'silo' WHEN '{_roles.ClientRole}' THEN 'client' ELSE 'tracker' END,
                          CASE WHEN rolcanlogin THEN 't' ELSE 'f' END, CASE WHEN rolsuper THEN 't' ELSE 'f' END, CASE WHEN rolreplication THEN 't' ELSE 'f' END,
                          rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, md5(coalesce(rolpassword, ''))) AS line
            FROM pg_authid WHERE rolname IN ('{_roles.SiloRole}', '{_roles.ClientRole}', '{_roles.TrackerRole}')
            UNION ALL
            SELECT format('table %s acl=%s', relname, relacl) FROM pg_class
            WHERE relname IN ('orleansquery', 'orleanslsn_membership_deployment', 'orleanslsn_membership_silo', 'app_orders')
            UNION ALL
            SELECT format('function %s acl=%s secdef=%s', proname, proacl, prosecdef) FROM pg_proc WHERE proname = 'orleanslsn_membership_gateways'
            UNION ALL
            SELECT format('database acl=%s', datacl) FROM pg_database WHERE datname = current_database()
            UNION ALL
            SELECT format('publication %s oid=%s tables=%s', p.pubname, p.oid, (SELECT string_agg(tablename, ',') FROM pg_publication_tables t WHERE t.pubname = p.pubname))
            FROM pg_publication AS p
        ) AS parts
        """);

    private async Task<AdoNetClusteringTable> MembershipTableAsync(string connectionString)
    {
        var table = new AdoNetClusteringTable(
            new ServiceCollection().BuildServiceProvider(),
            Options.Create(new ClusterOptions { ClusterId = ClusterId, ServiceId = "svc" }),
            Options.Create(new AdoNetClusteringSiloOptions { Invariant = "Npgsql", ConnectionString = connectionString }),
            NullLogger<AdoNetClusteringTable>.Instance);
        await table.InitializeMembershipTableAsync(tryInitTableVersion: true, Ct);
        return table;
    }

    private static MembershipEntry Entry(int port, SiloStatus status, int proxyPort = 0) => AdoNetProviderTests.Entry(port, status, proxyPort);

    private static string As(string connectionString, string role, string password) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Username = role, Password = password, Pooling = false }.ConnectionString;

    private static async Task AssertRefusedAsync(string connectionString, string sql)
    {
        PostgresException refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(connectionString, sql));
        Assert.True(refused.SqlState == PostgresErrorCodes.InsufficientPrivilege, $"expected 42501 for {sql}, got {refused.SqlState}: {refused.MessageText}");
    }

    private async Task DropRolesAsync()
    {
        foreach (string role in _roleNames)
        {
            await ExecuteAsync(Fixture.PrimaryConnectionString, $"DROP ROLE IF EXISTS \"{role}\"");
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }
}
