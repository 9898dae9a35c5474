using Npgsql;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// <see cref="IReplicationGrain"/> through the cluster client: changes written on the real primary reach client
/// observers in commit order; backpressure, pause and retries work across the cluster; only configured slots stream.
/// Each test has its own slot, publication and table (<see cref="TestSlots"/>).
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReplicationGrainTests(ClusterFixture fixture) : ClusterTestBase(fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task EveryChange_ReachesAClientObserver_InCommitOrder()
    {
        string slot = TestSlots.Order;
        string table = TestSlots.Table(slot);
        (IReplicationGrain grain, RecordingChangeObserver observer, IChangeObserver reference, ObserverRefs refs) = await SubscribeAsync(slot);
        using (refs)
        {
            await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
            var expected = new List<(ChangeKind Kind, string Id)>();
            await ExecAsync(primary, $"insert into {table} values (1, 'a'), (2, 'b'), (3, 'c')");
            expected.AddRange([(ChangeKind.Insert, "1"), (ChangeKind.Insert, "2"), (ChangeKind.Insert, "3")]);
            await ExecAsync(primary, $"update {table} set payload = 'bb' where id = 2");
            expected.Add((ChangeKind.Update, "2"));
            await ExecAsync(primary, $"delete from {table} where id = 1");
            expected.Add((ChangeKind.Delete, "1"));
            // One transaction larger than a batch: it arrives in fragments, still in order.
            await ExecAsync(primary, $"insert into {table} select g, 'p' || g from generate_series(10, 2509) g");
            expected.AddRange(Enumerable.Range(10, 2500).Select(i => (ChangeKind.Insert, i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
            for (int i = 0; i < 20; i++)
            {
                await ExecAsync(primary, $"insert into {table} values ($1, 'loop')", 5000L + i);
                expected.Add((ChangeKind.Insert, (5000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }

            await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Count() >= expected.Count, Deadline,
                () => $"{expected.Count} rows confirmed, have {observer.Recorder.ConfirmedRows.Count()}");
            var got = observer.Recorder.ConfirmedRows.Select(c => (c.Kind, c.Kind == ChangeKind.Delete ? c.OldValues![0]! : c["id"]!)).ToList();
            Assert.Equal(expected, got);

            List<ChangeBatch> batches = observer.Recorder.Confirmed.Select(c => c.Batch).ToList();
            for (int i = 1; i < batches.Count; i++)
            {
                ChangeBatch previous = batches[i - 1];
                ChangeBatch current = batches[i];
                if (previous.IsLastFragment)
                {
                    Assert.True(current.CommitLsn > previous.CommitLsn, $"commit LSN {current.CommitLsn} after {previous.CommitLsn}");
                    Assert.Equal(0, current.Fragment);
                }
                else
                {
                    Assert.Equal(previous.CommitLsn, current.CommitLsn);
                    Assert.Equal(previous.Fragment + 1, current.Fragment);
                }
            }

            Assert.Contains(batches, b => b.Fragment > 0);
            Assert.All(batches, b => Assert.Equal(slot, b.Slot));

            // Everything confirmed is acknowledged to PostgreSQL: the flush position reaches the last commit.
            Lsn lastEnd = batches[^1].EndLsn;
            await Wait.UntilAsync(async () => (await grain.GetStatus()).FlushedLsn >= lastEnd, Deadline, () => $"flushed up to {lastEnd}");
            await grain.Unsubscribe(reference);
        }
    }

    [Fact]
    public async Task SlowObserver_HoldsThePumpByBackpressure_WithoutAnyReconnect()
    {
        string slot = TestSlots.Backpressure;
        string table = TestSlots.Table(slot);
        (IReplicationGrain grain, RecordingChangeObserver observer, IChangeObserver reference, ObserverRefs refs) = await SubscribeAsync(slot);
        using (refs)
        {
            ReplicationStatus before = await grain.GetStatus();
            observer.Recorder.Hold();
            await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
            for (int i = 1; i <= 40; i++)
            {
                await ExecAsync(primary, $"insert into {table} values ($1, 'x')", (long)i);
            }

            // 16 unconfirmed batches is the test cluster's high-water mark.
            await Wait.UntilAsync(async () => (await grain.GetStatus()).PauseReasons.HasFlag(PauseReasons.Backpressure), Deadline,
                () => "backpressure while the observer holds its first batch");
            ReplicationStatus held = await grain.GetStatus();
            Assert.True(held.BacklogBatches >= 16, $"backlog {held.BacklogBatches}");
            Assert.Equal(before.ServerPid, held.ServerPid);
            Assert.Equal(0, held.ReconnectCount);

            observer.Recorder.Release();
            await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Count() >= 40, Deadline, () => "all 40 rows after the release");
            ReplicationStatus after = await grain.GetStatus();
            Assert.Equal(PauseReasons.None, after.PauseReasons);
            Assert.Equal(before.ServerPid, after.ServerPid);
            Assert.Equal(0, after.ReconnectCount);
            Assert.Equal(Enumerable.Range(1, 40).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), observer.Recorder.ConfirmedRows.Select(r => r["id"]));
            await grain.Unsubscribe(reference);
        }
    }

    [Fact]
    public async Task PauseAndResume_ThroughTheGrain_HoldAndReleaseTheStream()
    {
        string slot = TestSlots.Pause;
        string table = TestSlots.Table(slot);
        (IReplicationGrain grain, RecordingChangeObserver observer, IChangeObserver reference, ObserverRefs refs) = await SubscribeAsync(slot);
        using (refs)
        {
            await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
            await ExecAsync(primary, $"insert into {table} values (1, 'before')");
            await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Count() == 1, Deadline, () => "the row written before the pause");

            await grain.Pause();
            ReplicationStatus paused = await grain.GetStatus();
            Assert.True(paused.PauseReasons.HasFlag(PauseReasons.Manual));
            await ExecAsync(primary, $"insert into {table} select g, 'paused' from generate_series(2, 101) g");
            Lsn written = Lsn.Parse(await ScalarAsync<string>(primary, "select pg_current_wal_lsn()::text"));
            await Wait.UntilAsync(async () => (await grain.GetStatus()).ServerLsn >= written, Deadline, () => "the pump's probe sees the server past the write");
            Assert.Single(observer.Recorder.ConfirmedRows);
            Assert.True((await grain.GetStatus()).LagBytes > 0);

            await grain.Resume();
            await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Count() == 101, Deadline, () => "the rows written while paused, after the resume");
            ReplicationStatus resumed = await grain.GetStatus();
            Assert.Equal(paused.ServerPid, resumed.ServerPid);
            Assert.Equal(0, resumed.ReconnectCount);
            await grain.Unsubscribe(reference);
        }
    }

    [Fact]
    public async Task ThrowingObserver_GetsTheSameBatchAgain_ThenTheRest()
    {
        string slot = TestSlots.Throwing;
        string table = TestSlots.Table(slot);
        (IReplicationGrain grain, RecordingChangeObserver observer, IChangeObserver reference, ObserverRefs refs) = await SubscribeAsync(slot);
        using (refs)
        {
            int failures = 0;
            observer.Recorder.FailWith(b => b.Changes.Any(c => c["id"] == "2") && Interlocked.Increment(ref failures) <= 3
                ? new InvalidOperationException("observer failure " + failures)
                : null);
            await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
            for (int i = 1; i <= 3; i++)
            {
                await ExecAsync(primary, $"insert into {table} values ($1, 'x')", (long)i);
            }

            await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Count() == 3, Deadline, () => "three rows confirmed after the retries");
            Assert.Equal(["1", "2", "3"], observer.Recorder.ConfirmedRows.Select(r => r["id"]));
            List<ChangeBatch> received = observer.Recorder.Received.ToList();
            Assert.Equal(6, received.Count);
            Assert.Equal(4, received.Count(b => b.Changes[0]["id"] == "2"));
            Assert.Single(received.Select(b => b.Changes[0]["id"] == "2" ? (b.CommitLsn, b.Fragment) : default).Where(k => k != default).Distinct());
            ReplicationStatus status = await grain.GetStatus();
            Assert.Equal(1, status.Subscribers);
            await grain.Unsubscribe(reference);
        }
    }

    [Fact]
    public async Task UnconfiguredOrInvalidSlot_IsRefused_NamingTheConfiguredSlots_AndNothingReachesPostgres()
    {
        var missing = await Assert.ThrowsAsync<ReplicationSlotNotConfiguredException>(() => Client.GetGrain<IReplicationGrain>("not_configured").GetStatus());
        Assert.Equal("not_configured", missing.Slot);
        Assert.Equal(TestSlots.All.Order(StringComparer.Ordinal), missing.ConfiguredSlots.Order(StringComparer.Ordinal));
        Assert.Contains("'not_configured'", missing.Message, StringComparison.Ordinal);
        Assert.Contains("'" + TestSlots.Order + "'", missing.Message, StringComparison.Ordinal);

        foreach (string bad in new[] { "Bad-Name", "x'; drop table t; --", new string('s', 64) })
        {
            var invalid = await Assert.ThrowsAsync<ReplicationSlotNotConfiguredException>(() => Client.GetGrain<IReplicationGrain>(bad).Subscribe(null!));
            Assert.Contains("cannot be streamed", invalid.Message, StringComparison.Ordinal);
        }

        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        Assert.Equal(0L, await ScalarAsync<long>(primary, "select count(*) from pg_replication_slots where slot_name = 'not_configured'"));
    }

    [Fact]
    public async Task VanishedSubscriber_IsDroppedAfterTheSubscriberTimeout_AndStopsHoldingTheSlot()
    {
        string slot = TestSlots.Vanishing;
        string table = TestSlots.Table(slot);
        (IReplicationGrain grain, RecordingChangeObserver live, IChangeObserver liveRef, ObserverRefs refs) = await SubscribeAsync(slot);
        using (refs)
        {
            // A second subscriber whose deliveries never complete: a client that stopped answering.
            var gone = new RecordingChangeObserver();
            gone.Recorder.Hold();
            IChangeObserver goneRef = refs.Create<IChangeObserver>(gone);
            await grain.Subscribe(goneRef);
            Assert.Equal(2, (await grain.GetStatus()).Subscribers);

            await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
            await ExecAsync(primary, $"insert into {table} values (1, 'x')");
            await Wait.UntilAsync(() => live.Recorder.ConfirmedRows.Count() == 1, Deadline, () => "the live subscriber confirmed the row");
            Lsn end = live.Recorder.Confirmed[^1].Batch.EndLsn;
            Assert.True((await grain.GetStatus()).FlushedLsn < end, "the flush position passed a batch the hung subscriber has not confirmed");

            // The test cluster's subscriber timeout is 3 s: then the hung one is dropped and the slot moves on.
            var sw = System.Diagnostics.Stopwatch.StartNew();
            await Wait.UntilAsync(async () => (await grain.GetStatus()).Subscribers == 1, TimeSpan.FromSeconds(15), () => "the hung subscriber dropped");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"dropped after {sw.Elapsed}");
            await Wait.UntilAsync(async () => (await grain.GetStatus()).FlushedLsn >= end, Deadline, () => $"flushed past {end} once the hung subscriber is gone");
            gone.Recorder.Release();
            await grain.Unsubscribe(liveRef);
        }
    }

    [Fact]
    public async Task Grain_StaysActiveWithSubscribers_AndDeactivatesWithoutThem_ReleasingTheSlot()
    {
        string slot = TestSlots.Lifetime;
        (IReplicationGrain grain, _, IChangeObserver reference, ObserverRefs refs) = await SubscribeAsync(slot);
        using (refs)
        {
            await ForceCollectionAsync();
            ReplicationStatus status = await grain.GetStatus();
            Assert.Equal(1, status.Subscribers);
            Assert.NotNull(status.ServerPid);
            Assert.Equal(status.ServerPid, await ActivePidAsync(slot));

            await grain.Unsubscribe(reference);
            await ForceCollectionAsync();
            await Wait.UntilAsync(async () => await ActivePidAsync(slot) is null, Deadline, () => "slot released after deactivation");
        }
    }

    [Fact]
    public async Task AlwaysOnSlot_StreamsWithoutSubscribers_AndSurvivesCollection()
    {
        string slot = TestSlots.AlwaysOn;
        // Nobody calls its grain: the silos' keepers activate it.
        await Wait.UntilAsync(async () => await ActivePidAsync(slot) is not null, Deadline, () => "the always-on slot streaming without any call");
        int? pid = await ActivePidAsync(slot);
        await ForceCollectionAsync();
        ReplicationStatus status = await Client.GetGrain<IReplicationGrain>(slot).GetStatus();
        Assert.Equal(0, status.Subscribers);
        Assert.Equal(pid, status.ServerPid);
        Assert.Equal(pid, await ActivePidAsync(slot));
    }

    [Fact]
    public async Task Subscribe_ThenCommitAtOnce_OnAFreshSlot_DeliversTheCommit_EveryRound()
    {
        const int Rounds = 8;
        string slot = TestSlots.First;
        string table = TestSlots.Table(slot);
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        for (int round = 1; round <= Rounds; round++)
        {
            // A fresh slot and a fresh activation each round: the subscribe below is what creates both.
            Assert.Equal(0L, await ScalarAsync<long>(primary, "select count(*) from pg_replication_slots where slot_name = $1", slot));
            using var refs = new ObserverRefs(Client);
            var observer = new RecordingChangeObserver();
            IChangeObserver reference = refs.Create<IChangeObserver>(observer);
            await grain.Subscribe(reference);
            await ExecAsync(primary, $"insert into {table} values ($1, 'round')", (long)round);
            // Remembered on the primary, so that a later activation would hold the slot for it.
            Assert.Equal(1L, await ScalarAsync<long>(primary, "select count(*) from orleanslsn_replication_subscribers where slot_name = $1 and subscriber = $2", slot, reference.GetGrainId().ToString()));
            Lsn committed = Lsn.Parse(await ScalarAsync<string>(primary, "select pg_current_wal_lsn()::text"));
            string id = round.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Any(r => r["id"] == id), Deadline,
                () => $"round {round}: the row committed right after Subscribe returned (WAL at {committed} after it)");

            await grain.Unsubscribe(reference);
            Assert.Equal(0L, await ScalarAsync<long>(primary, "select count(*) from orleanslsn_replication_subscribers where slot_name = $1", slot));
            await ForceCollectionAsync();
            await Wait.UntilAsync(async () => await ActivePidAsync(slot) is null, Deadline, () => $"round {round}: slot released after deactivation");
            await DropSlotAsync(primary, slot);
        }
    }

    [Fact]
    public async Task Subscribe_WhileATransactionHoldsSlotCreation_WaitsWithoutHoldingTheGrain_ThenSucceeds()
    {
        string slot = TestSlots.Blocked;
        string table = TestSlots.Table(slot);
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        await using NpgsqlConnection holder = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await using NpgsqlTransaction transaction = await holder.BeginTransactionAsync(Ct);
        await using (var write = new NpgsqlCommand($"insert into {table} values (0, 'open')", holder, transaction))
        {
            // A transaction with an xid: creating a logical slot waits for it to end.
            await write.ExecuteNonQueryAsync(Ct);
        }

        using var refs = new ObserverRefs(Client);
        var observer = new RecordingChangeObserver();
        IChangeObserver reference = refs.Create<IChangeObserver>(observer);
        Task subscribing = grain.Subscribe(reference);
        // The grain answers other calls meanwhile: the waiting subscribe does not hold its turn.
        ReplicationStatus status = await Wait.ForAsync(grain.GetStatus(), TimeSpan.FromSeconds(10), "GetStatus while a subscribe waits for the slot");
        Assert.Equal(0, status.Subscribers);
        Assert.False(subscribing.IsCompleted, "Subscribe returned while slot creation was still blocked by a running transaction");

        await transaction.CommitAsync(Ct);
        await Wait.ForAsync(subscribing, Deadline, "Subscribe after the transaction ended");
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await ExecAsync(primary, $"insert into {table} values (1, 'after')");
        await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Any(r => r["id"] == "1"), Deadline, () => "the row committed after Subscribe returned");
        Assert.DoesNotContain(observer.Recorder.ConfirmedRows, r => r["id"] == "0");
        await grain.Unsubscribe(reference);
    }

    [Fact]
    public async Task Subscribe_ToASlotThatCannotBeCreated_FailsWithTheReason_AndSubscribesNothing()
    {
        string slot = TestSlots.NoPublication;
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        using var refs = new ObserverRefs(Client);
        IChangeObserver reference = refs.Create<IChangeObserver>(new RecordingChangeObserver());
        var e = await Assert.ThrowsAsync<ReplicationSlotUnavailableException>(() => grain.Subscribe(reference));
        Assert.Equal(slot, e.Slot);
        Assert.Equal(ReplicationErrorKind.PublicationMissing, e.Kind);
        Assert.Contains($"publication \"{TestSlots.Publication(slot)}\" does not exist", e.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was subscribed", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, (await grain.GetStatus()).Subscribers);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        Assert.Equal(0L, await ScalarAsync<long>(primary, "select count(*) from pg_replication_slots where slot_name = $1", slot));
    }

    private static async Task DropSlotAsync(NpgsqlConnection primary, string slot)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await ExecAsync(primary, "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", slot);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 100)
            {
                await Task.Delay(50, Ct);
            }
        }
    }

    private async Task<int?> ActivePidAsync(string slot)
    {
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await using var cmd = new NpgsqlCommand("select active_pid from pg_replication_slots where slot_name = $1", primary);
        cmd.Parameters.AddWithValue(slot);
        object? value = await cmd.ExecuteScalarAsync(Ct);
        return value is int pid ? pid : null;
    }

    private async Task<(IReplicationGrain Grain, RecordingChangeObserver Observer, IChangeObserver Reference, ObserverRefs Refs)> SubscribeAsync(string slot)
    {
        var refs = new ObserverRefs(Client);
        var observer = new RecordingChangeObserver();
        IChangeObserver reference = refs.Create<IChangeObserver>(observer);
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        await grain.Subscribe(reference);
        await Wait.UntilAsync(async () => (await grain.GetStatus()) is { State: ReplicationState.Streaming, ServerPid: not null }, Deadline,
            () => $"slot {slot} streaming");
        return (grain, observer, reference, refs);
    }
}
