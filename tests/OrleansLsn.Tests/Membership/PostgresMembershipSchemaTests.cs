using Npgsql;
using OrleansLsn.Membership;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Membership;

public sealed class PostgresMembershipSchemaTests(PostgresFixture fixture) : MembershipTestBase(fixture)
{
    /// <summary>
    /// Everything the setup owns, including what a rewrite would change (table OIDs and file nodes, the query rows'
    /// xmin), so equal fingerprints mean nothing was recreated or rewritten.
    /// </summary>
    private const string FingerprintSql = """
        SELECT md5(string_agg(line, E'\n' ORDER BY line)) FROM (
            SELECT format('table %s oid=%s node=%s', c.relname, c.oid, c.relfilenode) AS line
            FROM pg_class c
            WHERE c.relname IN ('orleansquery', 'orleanslsn_membership_deployment', 'orleanslsn_membership_silo')
            UNION ALL
            SELECT format('column %s.%s %s %s null=%s default=%s', table_name, ordinal_position, column_name, data_type, is_nullable, column_default)
            FROM information_schema.columns
            WHERE table_name IN ('orleansquery', 'orleanslsn_membership_deployment', 'orleanslsn_membership_silo')
            UNION ALL
            SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
            FROM pg_constraint
            WHERE conrelid::regclass::text IN ('orleansquery', 'orleanslsn_membership_deployment', 'orleanslsn_membership_silo')
            UNION ALL
            SELECT format('index %s', indexdef) FROM pg_indexes
            WHERE tablename IN ('orleansquery', 'orleanslsn_membership_deployment', 'orleanslsn_membership_silo')
            UNION ALL
            SELECT format('query %s xmin=%s md5=%s', QueryKey, xmin, md5(QueryText)) FROM OrleansQuery
        ) AS parts
        """;

    [Fact]
    public async Task ApplyAsync_Twice_SecondChangesNothingAndAllKeysPresent()
    {
        var logger = new RecordingLogger();
        Assert.False(await PostgresMembershipSchema.IsAppliedAsync(Db, logger, Ct));
        Assert.Equal(1, logger.Count(PostgresMembershipSchema.EventIds.NotApplied));

        await PostgresMembershipSchema.ApplyAsync(Db, logger, Ct);
        string first = await FingerprintAsync();
        await PostgresMembershipSchema.ApplyAsync(Db, logger, Ct);
        string second = await FingerprintAsync();

        Assert.Equal(first, second);
        Assert.True(await PostgresMembershipSchema.IsAppliedAsync(Db, logger, Ct));
        Assert.Equal(PostgresMembershipSchema.InstalledQueryKeys.Order(StringComparer.Ordinal), await QueryKeysAsync());
        Assert.Equal(1, logger.Count(PostgresMembershipSchema.EventIds.Created));
        Assert.Equal(1, logger.Count(PostgresMembershipSchema.EventIds.AlreadyPresent));
        Assert.DoesNotContain(logger.Entries, e => e.Message.Contains("Password", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("Host=", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task ApplyAsync_FromFourTasksAtOnce_OneCreatesOthersFindItPresent()
    {
        var logger = new RecordingLogger();
        Task[] applies = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(() => PostgresMembershipSchema.ApplyAsync(Db, logger, Ct), Ct))];
        await WithinAsync(Task.WhenAll(applies), TimeSpan.FromSeconds(60), "four concurrent applies");
        string afterConcurrent = await FingerprintAsync();

        await PostgresMembershipSchema.ApplyAsync(Db, logger, Ct);

        Assert.Equal(afterConcurrent, await FingerprintAsync());
        Assert.Equal(1, logger.Count(PostgresMembershipSchema.EventIds.Created));
        Assert.Equal(4, logger.Count(PostgresMembershipSchema.EventIds.AlreadyPresent));
        Assert.True(await PostgresMembershipSchema.IsAppliedAsync(Db, null, Ct));
    }

    [Fact]
    public async Task ApplyAsync_WhileAnotherHoldsTheLock_WaitsForIt()
    {
        await using var holder = new NpgsqlConnection(Db);
        await holder.OpenAsync(Ct);
        await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock($1)", holder))
        {
            take.Parameters.Add(new NpgsqlParameter { Value = PostgresMembershipSchema.AdvisoryLockKey });
            await take.ExecuteNonQueryAsync(Ct);
        }

        Task apply = PostgresMembershipSchema.ApplyAsync(Db, null, Ct);
        await WaitUntilAsync(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            1L, "the apply waiting on the advisory lock");
        Assert.False(apply.IsCompleted, "apply finished while another session held the lock");
        Assert.False(await PostgresMembershipSchema.IsAppliedAsync(Db, null, Ct));

        await using (var release = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", holder))
        {
            release.Parameters.Add(new NpgsqlParameter { Value = PostgresMembershipSchema.AdvisoryLockKey });
            await release.ExecuteNonQueryAsync(Ct);
        }

        await WithinAsync(apply, TimeSpan.FromSeconds(30), "apply after the lock was released");
        Assert.True(await PostgresMembershipSchema.IsAppliedAsync(Db, null, Ct));
    }

    [Fact]
    public async Task ApplyAsync_AfterAQueryWasChanged_RewritesOnlyThatQuery()
    {
        await PostgresMembershipSchema.ApplyAsync(Db, null, Ct);
        Dictionary<string, string> before = await QueryXminsAsync();
        await ExecuteAsync("UPDATE OrleansQuery SET QueryText = 'SELECT 1' WHERE QueryKey = 'GatewaysQueryKey'");

        var logger = new RecordingLogger();
        await PostgresMembershipSchema.ApplyAsync(Db, logger, Ct);

        Dictionary<string, string> after = await QueryXminsAsync();
        Assert.Equal(1, logger.Count(PostgresMembershipSchema.EventIds.Updated));
        Assert.Contains("replaced GatewaysQueryKey", logger.Entries.Single().Message, StringComparison.Ordinal);
        Assert.All(before.Keys.Where(k => k != "GatewaysQueryKey"), k => Assert.Equal(before[k], after[k]));
        StoredMembershipQueries queries = await StoredMembershipQueries.LoadAsync(Db, Ct);
        Assert.Empty(await queries.GatewaysAsync("nobody", Ct));
    }

    [Fact]
    public async Task ApplyAsync_WithRowsOfAnotherProvider_LeavesThemAlone()
    {
        await ExecuteAsync("""
            CREATE TABLE OrleansQuery (QueryKey varchar(64) NOT NULL PRIMARY KEY, QueryText varchar(8000) NOT NULL);
            INSERT INTO OrleansQuery VALUES ('ReadReminderRowsKey', 'SELECT 42');
            """);
        var logger = new RecordingLogger();

        await PostgresMembershipSchema.ApplyAsync(Db, logger, Ct);

        Assert.Equal(1, logger.Count(PostgresMembershipSchema.EventIds.Updated));
        Assert.Equal("SELECT 42", await ScalarAsync<string>("SELECT QueryText FROM OrleansQuery WHERE QueryKey = 'ReadReminderRowsKey'"));
        Assert.True(await PostgresMembershipSchema.IsAppliedAsync(Db, null, Ct));
    }

    [Fact]
    public async Task IsAppliedAsync_OneRequiredKeyMissing_FalseAndNamesIt()
    {
        await PostgresMembershipSchema.ApplyAsync(Db, null, Ct);
        await ExecuteAsync("DELETE FROM OrleansQuery WHERE QueryKey = 'UpdateIAmAlivetimeKey'");
        var logger = new RecordingLogger();

        Assert.False(await PostgresMembershipSchema.IsAppliedAsync(Db, logger, Ct));
        Assert.Contains("UpdateIAmAlivetimeKey", logger.Entries.Single().Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task IsAppliedAsync_OptionalKeyMissing_StillTrue()
    {
        await PostgresMembershipSchema.ApplyAsync(Db, null, Ct);
        await ExecuteAsync("DELETE FROM OrleansQuery WHERE QueryKey = 'CleanupDefunctSiloEntryKey'");

        Assert.True(await PostgresMembershipSchema.IsAppliedAsync(Db, null, Ct));
    }

    [Fact]
    public void RequiredQueryKeys_MatchWhatTheProviderDemands()
    {
        // The provider's DbStoredQueries turns every instance property into a required key.
        Type stored = typeof(Orleans.Runtime.MembershipService.AdoNetClusteringTable).Assembly
            .GetType("Orleans.Clustering.AdoNet.Storage.DbStoredQueries", throwOnError: true)!;
        string[] demanded = [.. stored.GetProperties(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic).Select(p => p.Name).Order(StringComparer.Ordinal)];

        Assert.Equal(demanded, PostgresMembershipSchema.RequiredQueryKeys.Order(StringComparer.Ordinal));
    }

    private async Task<string> FingerprintAsync() => await ScalarAsync<string>(FingerprintSql);

    private async Task<string[]> QueryKeysAsync()
    {
        var keys = new List<string>();
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("SELECT QueryKey FROM OrleansQuery ORDER BY QueryKey COLLATE \"C\"", conn);
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            keys.Add(reader.GetString(0));
        }

        return [.. keys];
    }

    private async Task<Dictionary<string, string>> QueryXminsAsync()
    {
        var xmins = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("SELECT QueryKey, xmin::text FROM OrleansQuery", conn);
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            xmins.Add(reader.GetString(0), reader.GetString(1));
        }

        return xmins;
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

    private async Task WaitUntilAsync(string sql, long expected, string phase)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        long actual;
        while ((actual = await ScalarAsync<long>(sql)) != expected)
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out after 30 s waiting for {phase}: expected {expected}, got {actual}");
            await Task.Delay(10, Ct);
        }
    }
}
