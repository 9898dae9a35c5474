using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>Clear, classified errors for what a user gets wrong, and recovery once it is fixed.</summary>
public sealed class ReplicationErrorTests(PostgresFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task SlotActiveForAnotherConsumer_ClearErrorWithPid_RetriedUntilFree()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(SlotActiveForAnotherConsumer_ClearErrorWithPid_RetriedUntilFree));
        await scenario.ExecuteAsync($"create publication {scenario.Publication} for table {scenario.Table}");
        await scenario.ExecuteAsync($"select pg_create_logical_replication_slot('{scenario.Slot}', 'pgoutput')");

        // Another consumer (not a pump) streams from the slot.
        using var otherStop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var other = new LogicalReplicationConnection(fixture.PrimaryConnectionString);
        await other.Open(Ct);
        Task otherLoop = Task.Run(async () =>
        {
            try
            {
                await foreach (PgOutputReplicationMessage _ in other.StartReplication(
                    new PgOutputReplicationSlot(scenario.Slot), new PgOutputReplicationOptions(scenario.Publication, PgOutputProtocolVersion.V1), otherStop.Token))
                {
                }
            }
            catch (OperationCanceledException)
            {
            }
        }, Ct);
        await Wait.UntilAsync(() => scenario.ActivePidAsync().Result == other.ProcessID, Timeout, () => "the other consumer to hold the slot", Ct);

        ReplicationPump pump = scenario.StartPump();
        await Wait.UntilAsync(() => pump.Status.ReconnectCount >= 2, Timeout, () => $"repeated refusals; status {pump.Status}", Ct);
        ReplicationStatus status = pump.Status;
        Assert.Equal(ReplicationErrorKind.SlotInUse, status.LastErrorKind);
        Assert.Contains($"is active for PID {other.ProcessID}", status.LastError, StringComparison.Ordinal);
        Assert.NotEqual(ReplicationState.Failed, status.State);

        await otherStop.CancelAsync();
        await otherLoop;
        await scenario.WaitStreamingAsync(pump);
    }

    [Fact]
    public async Task SecondPumpOnTheSameSlot_RefusedByTheAdvisoryLock_TakesOverWhenTheFirstStops()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(SecondPumpOnTheSameSlot_RefusedByTheAdvisoryLock_TakesOverWhenTheFirstStops));
        ReplicationPump first = scenario.StartPump();
        await scenario.WaitStreamingAsync(first);

        ReplicationPump second = scenario.StartPump();
        await Wait.UntilAsync(() => second.Status.ReconnectCount >= 2, Timeout, () => $"the second pump to be refused; status {second.Status}", Ct);
        Assert.Equal(ReplicationErrorKind.SlotInUse, second.Status.LastErrorKind);
        Assert.Contains("owned by another pump", second.Status.LastError, StringComparison.Ordinal);
        Assert.Equal(ReplicationState.Streaming, first.Status.State);

        var recorder = new BatchRecorder();
        await using ReplicationSubscription subscription = second.Subscribe(recorder.OnChangesAsync);
        await first.DisposeAsync();
        await scenario.WaitStreamingAsync(second);
        await scenario.InsertRangeAsync(1, 1);
        await Wait.UntilAsync(() => recorder.Confirmed.Count == 1, Timeout, () => "delivery by the second pump", Ct);
    }

    [Fact]
    public async Task MissingPublication_WithCreationDisabled_ClearError_ThenStreamsOnceCreated()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(MissingPublication_WithCreationDisabled_ClearError_ThenStreamsOnceCreated));
        ReplicationPump pump = scenario.StartPump(o => o.CreatePublication = false);
        await Wait.UntilAsync(() => pump.Status.LastErrorKind == ReplicationErrorKind.PublicationMissing, Timeout, () => $"a publication error; status {pump.Status}", Ct);
        Assert.Contains($"publication \"{scenario.Publication}\" does not exist", pump.Status.LastError, StringComparison.Ordinal);
        Assert.Null(await scenario.ScalarAsync<string>($"select slot_name::text from pg_replication_slots where slot_name = '{scenario.Slot}'"));

        await scenario.ExecuteAsync($"create publication {scenario.Publication} for table {scenario.Table}");
        await scenario.WaitStreamingAsync(pump);
    }

    [Fact]
    public async Task MissingSlot_WithCreationDisabled_ClearError()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(MissingSlot_WithCreationDisabled_ClearError));
        ReplicationPump pump = scenario.StartPump(o => o.CreateSlot = false);
        await Wait.UntilAsync(() => pump.Status.LastErrorKind == ReplicationErrorKind.SlotMissing, Timeout, () => $"a slot error; status {pump.Status}", Ct);
        Assert.Contains($"replication slot \"{scenario.Slot}\" does not exist", pump.Status.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PublicationCreatedByThePump_CoversOnlyTheListedTables_QuotingMixedCase()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(PublicationCreatedByThePump_CoversOnlyTheListedTables_QuotingMixedCase));
        string mixed = "Mixed_" + scenario.Table;
        await scenario.ExecuteAsync($"drop table if exists \"{mixed}\"; create table \"{mixed}\"(id int primary key)");
        try
        {
            ReplicationPump pump = scenario.StartPump(o => o.PublicationTables.Add("public." + mixed));
            var recorder = new BatchRecorder();
            await using ReplicationSubscription subscription = pump.Subscribe(recorder.OnChangesAsync);
            await scenario.WaitStreamingAsync(pump);
            long tables = await scenario.ScalarAsync<long>($"select count(*) from pg_publication_tables where pubname = '{scenario.Publication}'");
            Assert.Equal(2, tables);

            await scenario.ExecuteAsync($"insert into \"{mixed}\" values (7)");
            await Wait.UntilAsync(() => recorder.Confirmed.Count == 1, Timeout, () => "the mixed-case table's insert", Ct);
            Assert.Equal(mixed, recorder.Confirmed[0].Batch.Changes[0].Relation.Name);
        }
        finally
        {
            await scenario.ExecuteAsync($"drop table if exists \"{mixed}\"");
        }
    }

    [Fact]
    public async Task WalLevelNotLogical_ClearServerConfigurationError()
    {
        var options = new TestPostgresClusterOptions { Name = "wal-replica" };
        options.Settings["wal_level"] = "'replica'";
        await using ITestPostgresCluster cluster = await TestPostgres.StartClusterAsync(options, Ct);

        await using var pump = new ReplicationPump(new ReplicationPumpOptions
        {
            ConnectionString = cluster.Primary.ConnectionString,
            SlotName = "s_wal_level",
            PublicationName = "p_wal_level",
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(50),
        });
        pump.Start();
        await Wait.UntilAsync(() => pump.Status.LastErrorKind == ReplicationErrorKind.ServerConfiguration, Timeout, () => $"a configuration error; status {pump.Status}", Ct);
        Assert.Contains("wal_level is 'replica'", pump.Status.LastError, StringComparison.Ordinal);
        Assert.Contains("wal_level = logical", pump.Status.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SlotInvalidatedByMaxSlotWalKeepSize_TerminalClearError()
    {
        var options = new TestPostgresClusterOptions { Name = "slot-lost" };
        options.Settings["max_slot_wal_keep_size"] = "'1MB'";
        options.Settings["wal_keep_size"] = "0";
        options.Settings["max_wal_size"] = "'64MB'";
        options.Settings["min_wal_size"] = "'32MB'";
        options.Settings["wal_sender_timeout"] = "'2s'";
        await using ITestPostgresCluster cluster = await TestPostgres.StartClusterAsync(options, Ct);
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(cluster.Primary.ConnectionString, nameof(SlotInvalidatedByMaxSlotWalKeepSize_TerminalClearError));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();
        pump.Pause();

        // Unread WAL far beyond max_slot_wal_keep_size, then a checkpoint: the slot loses the WAL it needs.
        for (int i = 0; i < 4; i++)
        {
            await Wait.ForAsync(scenario.InsertRangeAsync((i * 20_000) + 1, (i + 1) * 20_000, new string('w', 200)), Timeout, $"insert {i}");
            await Wait.ForAsync(scenario.ExecuteAsync("select pg_switch_wal()").ContinueWith(_ => 0, Ct), Timeout, "switch");
        }

        Task checkpoint = scenario.ExecuteAsync("checkpoint");
        if (await Task.WhenAny(checkpoint, Task.Delay(Timeout, Ct)) != checkpoint)
        {
            string activity = string.Join("\n", await ActivityAsync(cluster.Primary.ConnectionString));
            Assert.Fail("checkpoint hung; activity:\n" + activity + "\nlog:\n" + await cluster.Primary.ReadLogTailAsync(6000));
        }
        await Wait.UntilAsync(() => scenario.ScalarAsync<string>($"select wal_status from pg_replication_slots where slot_name = '{scenario.Slot}'").Result == "lost",
            Timeout, () => "the server to invalidate the slot", Ct);

        await Wait.UntilAsync(() => pump.Status.State == ReplicationState.Failed, Timeout, () => $"a terminal failure; status {pump.Status}", Ct);
        ReplicationStatus status = pump.Status;
        Assert.Equal(ReplicationErrorKind.SlotInvalidated, status.LastErrorKind);
        Assert.Contains("was invalidated", status.LastError, StringComparison.Ordinal);
        Assert.Contains("max_slot_wal_keep_size", status.LastError, StringComparison.Ordinal);
        Assert.Null(status.ServerPid);
    }

    private static async Task<List<string>> ActivityAsync(string cs)
    {
        var rows = new List<string>();
        await using var conn = new NpgsqlConnection(cs);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("select pid, backend_type, state, wait_event_type, wait_event, left(query, 60) from pg_stat_activity", conn);
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        while (await r.ReadAsync(Ct))
        {
            rows.Add(string.Join(" | ", Enumerable.Range(0, r.FieldCount).Select(i => r.IsDBNull(i) ? "" : r.GetValue(i).ToString())));
        }

        return rows;
    }
}
