using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// <see cref="PrimaryLsn.CommitAsync"/> and <see cref="PrimaryLsn.GetCommittedWriteAsync"/> against the real primary
/// and standby: the LSN a reader waits for is at or past the commit (the standby shows the row once it has replayed it),
/// the primary's identity is the standby's too, and nothing is reported for a transaction that wrote nothing, had
/// failed, or whose commit failed; the connection stays usable after each.
/// </summary>
public sealed class PrimaryLsnCommitTests(PostgresFixture postgres)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Commit_ReturnsAnLsnAtOrPastTheCommit_WhereTheStandbyShowsTheRow_AndThePrimarysIdentity()
    {
        string table = await CreateTableAsync("commit_lsn");
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await using NpgsqlTransaction transaction = await primary.BeginTransactionAsync(Ct);
        await ExecAsync(primary, $"insert into {table} values (1)");
        Lsn beforeCommit = await ScalarLsnAsync(primary, "select pg_current_wal_insert_lsn()");

        CommittedWrite? write = await PrimaryLsn.CommitAsync(transaction, Ct);

        Assert.NotNull(write);
        Assert.True(write.Value.Lsn > beforeCommit, $"{write.Value.Lsn} is not past the insert's WAL ({beforeCommit}): the commit record comes after it");
        await using NpgsqlConnection standby = await OpenAsync(postgres.StandbyConnectionString);
        await Wait.UntilAsync(
            async () => await ScalarLsnAsync(standby, "select pg_last_wal_replay_lsn()") >= write.Value.Lsn,
            Deadline,
            () => $"the standby to replay {write.Value.Lsn}",
            Ct);
        Assert.Equal(1L, await ScalarAsync<long>(standby, $"select count(*) from {table}"));

        ulong primarySystem = unchecked((ulong)await ScalarAsync<long>(primary, "select system_identifier from pg_control_system()"));
        ulong standbySystem = unchecked((ulong)await ScalarAsync<long>(standby, "select system_identifier from pg_control_system()"));
        Assert.Equal(primarySystem, write.Value.Primary.SystemIdentifier);
        Assert.Equal(standbySystem, write.Value.Primary.SystemIdentifier);
        // The standby receives the primary's current timeline: an independent reading of the same number.
        Assert.Equal((uint)await ScalarAsync<int>(standby, "select received_tli from pg_stat_wal_receiver"), write.Value.Primary.Timeline);

        // The transaction is over: the connection takes a new one, and disposing the committed one rolls nothing back.
        await transaction.DisposeAsync();
        Assert.Equal(1L, await ScalarAsync<long>(primary, $"select count(*) from {table}"));
        await using NpgsqlTransaction next = await primary.BeginTransactionAsync(Ct);
        await next.RollbackAsync(Ct);
    }

    [Fact]
    public async Task Commit_WorksForAnApplicationRoleWithoutPrivileges_BeyondItsTable()
    {
        string table = await CreateTableAsync("commit_app_role");
        string role = $"app_{Guid.NewGuid():N}"[..20];
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await ExecAsync(primary, $"create role {role} nologin; grant insert on {table} to {role}");
        try
        {
            await ExecAsync(primary, $"set role {role}");
            await using (NpgsqlTransaction transaction = await primary.BeginTransactionAsync(Ct))
            {
                await ExecAsync(primary, $"insert into {table} values (1)");
                Assert.NotNull(await PrimaryLsn.CommitAsync(transaction, Ct));
            }

            await PrimaryLsn.GetCommittedWriteAsync(primary, Ct);
        }
        finally
        {
            await ExecAsync(primary, $"reset role; drop owned by {role}; drop role {role}");
        }
    }

    [Fact]
    public async Task Commit_OfATransactionThatWroteNothing_CommitsAndReturnsNull()
    {
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await using NpgsqlTransaction transaction = await primary.BeginTransactionAsync(Ct);
        Assert.Equal(1, await ScalarAsync<int>(primary, "select 1"));

        Assert.Null(await PrimaryLsn.CommitAsync(transaction, Ct));

        Assert.Equal("I", await ScalarAsync<string>(primary, "select case when txid_current_if_assigned() is null then 'I' else 'T' end"));
        await using NpgsqlTransaction next = await primary.BeginTransactionAsync(Ct);
        await next.RollbackAsync(Ct);
    }

    [Fact]
    public async Task Commit_OfAFailedTransaction_RollsItBack_ReportsNothing_AndCommitsNothing()
    {
        string table = await CreateTableAsync("commit_failed_tx");
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await using NpgsqlTransaction transaction = await primary.BeginTransactionAsync(Ct);
        await ExecAsync(primary, $"insert into {table} values (1)");
        await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(primary, "select 1 / 0"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => PrimaryLsn.CommitAsync(transaction, Ct));

        Assert.Contains("nothing was committed", error.Message, StringComparison.Ordinal);
        Assert.Equal(PostgresErrorCodes.InFailedSqlTransaction, Assert.IsType<PostgresException>(error.InnerException).SqlState);
        Assert.Equal(0L, await ScalarAsync<long>(primary, $"select count(*) from {table}"));
        await using NpgsqlTransaction next = await primary.BeginTransactionAsync(Ct);
        await next.RollbackAsync(Ct);
    }

    [Fact]
    public async Task Commit_ThatFails_Throws_AndCommitsNothing()
    {
        string table = await CreateTableAsync("commit_deferred", "id int unique deferrable initially deferred");
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await using NpgsqlTransaction transaction = await primary.BeginTransactionAsync(Ct);
        await ExecAsync(primary, $"insert into {table} values (1), (1)");

        var error = await Assert.ThrowsAsync<PostgresException>(() => PrimaryLsn.CommitAsync(transaction, Ct));

        Assert.Equal(PostgresErrorCodes.UniqueViolation, error.SqlState);
        Assert.Equal(0L, await ScalarAsync<long>(primary, $"select count(*) from {table}"));
        await using NpgsqlTransaction next = await primary.BeginTransactionAsync(Ct);
        await next.RollbackAsync(Ct);
    }

    [Fact]
    public async Task CommittedWrite_AfterAnAutocommitWrite_IsPastIt_AndRefusedInsideAWritingTransaction()
    {
        string table = await CreateTableAsync("committed_write");
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await ExecAsync(primary, $"insert into {table} values (1)");
        Lsn afterInsert = await ScalarLsnAsync(primary, "select pg_current_wal_insert_lsn()");

        CommittedWrite write = await PrimaryLsn.GetCommittedWriteAsync(primary, Ct);

        Assert.True(write.Lsn >= PrimaryLsn.SkipPageHeader(afterInsert, 8192, 16 * 1024 * 1024), $"{write.Lsn} is before {afterInsert}");
        ulong system = unchecked((ulong)await ScalarAsync<long>(primary, "select system_identifier from pg_control_system()"));
        Assert.Equal(system, write.Primary.SystemIdentifier);

        await using NpgsqlTransaction transaction = await primary.BeginTransactionAsync(Ct);
        await ExecAsync(primary, $"insert into {table} values (2)");
        await Assert.ThrowsAsync<InvalidOperationException>(() => PrimaryLsn.GetCommittedWriteAsync(primary, Ct));
        await transaction.RollbackAsync(Ct);
    }

    private async Task<string> CreateTableAsync(string name, string columns = "id int")
    {
        string table = $"{name}_{Guid.NewGuid():N}"[..40];
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await ExecAsync(primary, $"create table {table} ({columns})");
        return table;
    }

    private static async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        return connection;
    }

    private static async Task ExecAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static async Task<Lsn> ScalarLsnAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return new Lsn((ulong)(NpgsqlTypes.NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(Ct))!);
    }
}
