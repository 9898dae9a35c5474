using System.Globalization;
using Npgsql;
using Npgsql.Replication;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// Transactions larger than <c>logical_decoding_work_mem</c> and logical decoding messages, on every version of the CI
/// matrix (ORLEANSLSN_PG_VERSION). The pump never asks pgoutput for <c>streaming</c> nor for <c>messages</c>, so a
/// large transaction must be spilled by the server and sent whole at commit (never as stream messages), an aborted one
/// must send nothing, and a message between rows must not reach the pump. The pump's walsender gets the lowest limit
/// (64kB) through its own startup options, so no other test's server setting changes.
/// </summary>
public sealed class InProgressTransactionTests(PostgresFixture fixture)
{
    /// <summary>The lowest value PostgreSQL accepts; the default is 64MB.</summary>
    private const string WorkMem = "64kB";

    private const int LargeRows = 20_000;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task LargeTransaction_OverLogicalDecodingWorkMem_ArrivesWholeInOrderOnce_SpilledNotStreamed()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            LowWorkMem(fixture.PrimaryConnectionString), nameof(LargeTransaction_OverLogicalDecodingWorkMem_ArrivesWholeInOrderOnce_SpilledNotStreamed));
        Assert.Equal(WorkMem, await WalsenderWorkMemAsync(scenario.ConnectionString));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync(o =>
        {
            o.MaxBatchChanges = 1000;
            o.MaxBatchBytes = 64 * 1024;
        });

        // ~2.5 MB of changes in one transaction: about 40 times the walsender's limit.
        await scenario.InsertRangeAsync(1, LargeRows, new string('p', 100));
        await scenario.InsertRangeAsync(LargeRows + 1, LargeRows + 1, "after");

        await Wait.UntilAsync(
            () => recorder.ConfirmedRows.Any(r => r["id"] == Id(LargeRows + 1)),
            Timeout,
            () => $"row {LargeRows + 1} after the large transaction; got {recorder.Confirmed.Count} batches; status {pump.Status}",
            Ct);
        List<ChangeBatch> batches = [.. recorder.Confirmed.Select(c => c.Batch)];
        List<ChangeBatch> large = [.. batches.SkipLast(1)];
        Assert.True(large.Count > 1, $"{LargeRows} rows in 1000-change fragments need several batches; got {large.Count}");
        Assert.Single(large.Select(b => (b.CommitLsn, b.Xid, b.CommitTime)).Distinct());
        Assert.Equal(Enumerable.Range(0, large.Count), large.Select(b => b.Fragment));
        Assert.All(large.SkipLast(1), b => Assert.False(b.IsLastFragment));
        Assert.True(large[^1].IsLastFragment && large[^1].EndLsn > large[^1].CommitLsn);
        Assert.True(batches[^1] is { Fragment: 0, IsLastFragment: true } && batches[^1].CommitLsn > large[0].CommitLsn);
        Assert.Equal(Enumerable.Range(1, LargeRows + 1).Select(Id), recorder.ConfirmedRows.Select(r => r["id"]));
        Assert.Equal(batches.Count, recorder.Received.Count);

        // The server crossed the limit (it spilled) and streamed nothing; the pump saw no stream message (it fails on one).
        SlotStats stats = await WaitForSpillAsync(scenario);
        Assert.True(stats is { StreamTxns: 0, StreamCount: 0 }, $"nothing streamed; {stats}");
        Assert.True(pump.Status is { LastErrorKind: ReplicationErrorKind.None, ReconnectCount: 0 }, $"no error, no reconnect; status {pump.Status}");
    }

    [Fact]
    public async Task LargeTransaction_OverLogicalDecodingWorkMem_Aborted_DeliversNothing()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            LowWorkMem(fixture.PrimaryConnectionString), nameof(LargeTransaction_OverLogicalDecodingWorkMem_Aborted_DeliversNothing));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();

        SlotStats stats;
        await using (var conn = new NpgsqlConnection(fixture.PrimaryConnectionString))
        {
            await conn.OpenAsync(Ct);
            await using NpgsqlTransaction tx = await conn.BeginTransactionAsync(Ct);
            await using var insert = new NpgsqlCommand($"insert into {scenario.Table} select g, repeat('p', 100) from generate_series(1, {LargeRows}) g", conn, tx);
            insert.CommandTimeout = 300;
            await insert.ExecuteNonQueryAsync(Ct);

            // The walsender must decode past the limit while the transaction is still open: PostgreSQL 18 drops the
            // changes of a transaction that it finds already aborted when the limit is reached, instead of spilling them
            // (commit 072ee84, "Skip logical decoding of already-aborted transactions"; seen in CI on 18.4: no spill
            // when the walsender only got to the changes after the rollback). Waiting for the spill before the rollback
            // makes the decoding certain on every version.
            stats = await WaitForSpillAsync(scenario);
            await tx.RollbackAsync(Ct);
        }

        await scenario.InsertRangeAsync(LargeRows + 1, LargeRows + 1, "after");
        await Wait.UntilAsync(
            () => recorder.Confirmed.Count >= 1,
            Timeout,
            () => $"the transaction after the aborted one; status {pump.Status}",
            Ct);

        // The aborted transaction was decoded and spilled while open, yet nothing of it arrived.
        stats = await ReadStatsAsync(scenario) ?? stats;
        Assert.True(stats is { SpillTxns: > 0, StreamTxns: 0, StreamCount: 0 }, $"spilled, nothing streamed; {stats}");
        Assert.Equal([Id(LargeRows + 1)], recorder.ConfirmedRows.Select(r => r["id"]));
        Assert.Single(recorder.Received);
        Assert.True(pump.Status is { LastErrorKind: ReplicationErrorKind.None, ReconnectCount: 0 }, $"no error, no reconnect; status {pump.Status}");
    }

    [Fact]
    public async Task LogicalDecodingMessages_BetweenRows_DoNotReachThePumpNorBreakTheStream()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(LogicalDecodingMessages_BetweenRows_DoNotReachThePumpNorBreakTheStream));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();

        // A transactional message between the rows of one transaction, a non-transactional one between two transactions.
        await scenario.ExecuteAsync(
            $"""
            begin;
            insert into {scenario.Table} select g, 'm' from generate_series(1, 3) g;
            select pg_logical_emit_message(true, 'orleanslsn-test', 'between rows');
            insert into {scenario.Table} select g, 'm' from generate_series(4, 6) g;
            commit;
            select pg_logical_emit_message(false, 'orleanslsn-test', 'between transactions');
            """);
        await scenario.InsertRangeAsync(7, 7, "after");

        await Wait.UntilAsync(
            () => recorder.ConfirmedRows.Count() >= 7,
            Timeout,
            () => $"7 rows; got {recorder.ConfirmedRows.Count()}; status {pump.Status}",
            Ct);
        List<ChangeBatch> batches = [.. recorder.Confirmed.Select(c => c.Batch)];
        Assert.Equal([6, 1], batches.Select(b => b.Changes.Count));
        Assert.All(batches, b => Assert.True(b.IsLastFragment && b.Fragment == 0));
        Assert.Equal(Enumerable.Range(1, 7).Select(Id), recorder.ConfirmedRows.Select(r => r["id"]));
        Assert.True(pump.Status is { LastErrorKind: ReplicationErrorKind.None, ReconnectCount: 0 }, $"no error, no reconnect; status {pump.Status}");
    }

    private static string Id(int id) => id.ToString(CultureInfo.InvariantCulture);

    /// <summary>The connection string with <c>logical_decoding_work_mem</c> set for its sessions (the pump's walsender included).</summary>
    private static string LowWorkMem(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.Options = $"{builder.Options} -c logical_decoding_work_mem={WorkMem}".Trim();
        return builder.ConnectionString;
    }

    /// <summary>What a walsender opened with this connection string runs with.</summary>
    private static async Task<string> WalsenderWorkMemAsync(string connectionString)
    {
        await using var connection = new LogicalReplicationConnection(connectionString);
        await connection.Open(Ct);
        return await connection.Show("logical_decoding_work_mem", Ct);
    }

    /// <summary>Waits until the slot's statistics show a spilled transaction, and returns them.</summary>
    private static async Task<SlotStats> WaitForSpillAsync(ReplicationScenario scenario)
    {
        SlotStats? stats = null;
        await Wait.UntilAsync(
            async () => (stats = await ReadStatsAsync(scenario)) is { SpillTxns: > 0 },
            Timeout,
            () => $"pg_stat_replication_slots to count a spilled transaction for {scenario.Slot}; got {stats?.ToString() ?? "no row"}",
            Ct);
        return stats!;
    }

    private static async Task<SlotStats?> ReadStatsAsync(ReplicationScenario scenario)
    {
        await using var conn = new NpgsqlConnection(scenario.ConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(
            "select spill_txns, spill_bytes, stream_txns, stream_count from pg_stat_replication_slots where slot_name = $1", conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = scenario.Slot });
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(Ct);
        return await reader.ReadAsync(Ct)
            ? new SlotStats(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3))
            : null;
    }

    private sealed record SlotStats(long SpillTxns, long SpillBytes, long StreamTxns, long StreamCount);
}
