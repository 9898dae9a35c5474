using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>The pump against the shared real primary: delivery, acknowledgement, pause and status.</summary>
public sealed class ReplicationPumpTests(PostgresFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Inserts_ArriveAsOneBatchPerTransaction_WithCommitMetadata()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(Inserts_ArriveAsOneBatchPerTransaction_WithCommitMetadata));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();

        Lsn after1 = await scenario.InsertRangeAsync(1, 3, "a");
        Lsn after2 = await scenario.InsertRangeAsync(4, 4, "b");

        await Wait.UntilAsync(() => recorder.Confirmed.Count >= 2, Timeout, () => $"two batches; got {recorder.Confirmed.Count}; status {pump.Status}", Ct);
        IReadOnlyList<ChangeBatch> batches = recorder.Confirmed.Select(c => c.Batch).ToList();
        Assert.Equal(2, batches.Count);
        Assert.Equal([3, 1], batches.Select(b => b.Changes.Count));
        Assert.True(batches[0].CommitLsn < batches[1].CommitLsn);
        Assert.True(batches[0].CommitLsn <= after1 && batches[1].CommitLsn <= after2);
        Assert.All(batches, b => Assert.True(b.IsLastFragment && b.Fragment == 0 && b.EndLsn > b.CommitLsn && b.Xid != 0));
        Assert.NotEqual(batches[0].Xid, batches[1].Xid);
        Assert.All(batches, b => Assert.InRange(b.CommitTime, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1)));
        RowChange first = batches[0].Changes[0];
        Assert.Equal(ChangeKind.Insert, first.Kind);
        Assert.Equal(scenario.Table, first.Relation.Name);
        Assert.Equal("public", first.Relation.Schema);
        Assert.Equal(["id", "payload"], first.Relation.Columns.Select(c => c.Name));
        Assert.True(first.Relation.Columns[0].IsKey);
        Assert.Equal(["1", "a"], first.NewValues!);
        Assert.Equal("4", batches[1].Changes[0]["id"]);
    }

    [Fact]
    public async Task UpdatesDeletesAndTruncate_CarryValuesOldKeysAndNulls()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(UpdatesDeletesAndTruncate_CarryValuesOldKeysAndNulls),
            "id bigint primary key, payload text, n numeric, doc jsonb, at timestamptz, big text");
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();

        string t = scenario.Table;
        await scenario.ExecuteAsync($"insert into {t} values (1, 'one', 1.50, '{{\"a\": [1, 2]}}', '2026-01-02 03:04:05+00', (select string_agg(md5(g::text), '') from generate_series(1, 4000) g)), (2, null, null, null, null, null)");
        await scenario.ExecuteAsync($"update {t} set payload = 'uno' where id = 1");            // big is TOASTed and unchanged
        await scenario.ExecuteAsync($"update {t} set id = 20 where id = 2");                     // key change: old key sent
        await scenario.ExecuteAsync($"delete from {t} where id = 20");
        await scenario.ExecuteAsync($"alter table {t} replica identity full");
        await scenario.ExecuteAsync($"update {t} set n = 2 where id = 1");
        await scenario.ExecuteAsync($"delete from {t} where id = 1");
        await scenario.ExecuteAsync($"truncate {t}");

        await Wait.UntilAsync(() => recorder.ConfirmedRows.Count() >= 8, Timeout, () => $"8 changes in 7 transactions; got {recorder.ConfirmedRows.Count()}", Ct);
        Assert.Equal(7, recorder.Confirmed.Count);
        List<RowChange> c = recorder.ConfirmedRows.ToList();
        Assert.Equal(
            [ChangeKind.Insert, ChangeKind.Insert, ChangeKind.Update, ChangeKind.Update, ChangeKind.Delete, ChangeKind.Update, ChangeKind.Delete, ChangeKind.Truncate],
            c.Select(x => x.Kind));

        // The large value is incompressible enough to be stored out of line (TOASTed).
        Assert.Equal(["1", "one", "1.50", "{\"a\": [1, 2]}", "2026-01-02 03:04:05+00"], c[0].NewValues!.Take(5));
        Assert.Equal(4000 * 32, c[0].NewValues![5]!.Length);
        Assert.Equal(["2", null, null, null, null, null], c[1].NewValues!);

        // Update of a non-key column under the default identity: no old row; the unchanged TOASTed value is not sent.
        Assert.Null(c[2].OldValues);
        Assert.Equal("uno", c[2]["payload"]);
        Assert.Equal([5], c[2].UnchangedToastColumns!);
        Assert.Null(c[2].NewValues![5]);

        // Key change: the old key comes with it.
        Assert.True(c[3].OldValuesAreKeyOnly);
        Assert.Equal("2", c[3].OldValues![0]);
        Assert.Equal("20", c[3].NewValues![0]);

        // Delete under the default identity: the key only.
        Assert.True(c[4].OldValuesAreKeyOnly);
        Assert.Equal("20", c[4].OldValues![0]);
        Assert.Null(c[4].NewValues);

        // REPLICA IDENTITY FULL: whole old rows.
        Assert.False(c[5].OldValuesAreKeyOnly);
        Assert.Equal("uno", c[5].OldValues![1]);
        Assert.Equal("2", c[5].NewValues![2]);
        Assert.False(c[6].OldValuesAreKeyOnly);
        Assert.Equal(["1", "uno", "2"], c[6].OldValues!.Take(3));

        Assert.Equal(t, c[7].Relation.Name);
        Assert.Null(c[7].NewValues);
    }

    [Fact]
    public async Task LargeTransaction_ArrivesInBoundedFragments_SharingCommitMetadata()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(LargeTransaction_ArrivesInBoundedFragments_SharingCommitMetadata));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync(o =>
        {
            o.MaxBatchChanges = 1000;
            o.MaxBatchBytes = 64 * 1024;
            o.HighWaterBatches = 8;
            o.LowWaterBatches = 4;
        });

        await scenario.InsertRangeAsync(1, 20_000, new string('p', 50));

        await Wait.UntilAsync(() => recorder.Confirmed.Any(c => c.Batch.IsLastFragment), Timeout, () => $"the last fragment; got {recorder.Confirmed.Count} batches", Ct);
        List<ChangeBatch> batches = recorder.Confirmed.Select(c => c.Batch).ToList();
        Assert.True(batches.Count > 20, $"20 000 rows of ~120 bytes in 64 KiB fragments should need more than 20 batches; got {batches.Count}");
        Assert.All(batches, b => Assert.InRange(b.Changes.Count, 1, 1000));
        Assert.Equal(Enumerable.Range(0, batches.Count), batches.Select(b => b.Fragment));
        Assert.Single(batches.Select(b => (b.CommitLsn, b.Xid, b.CommitTime)).Distinct());
        Assert.All(batches.SkipLast(1), b => Assert.True(!b.IsLastFragment && b.EndLsn == Lsn.Invalid));
        Assert.True(batches[^1].EndLsn > batches[^1].CommitLsn);
        long expectedIndex = 0;
        foreach (ChangeBatch b in batches)
        {
            Assert.Equal(expectedIndex, b.FirstChangeIndex);
            expectedIndex += b.Changes.Count;
        }

        Assert.Equal(Enumerable.Range(1, 20_000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), batches.SelectMany(b => b.Changes).Select(r => r["id"]));
        Assert.True(pump.Status.BacklogBatches <= 9, "the backlog never holds more than the high-water mark plus one batch");
    }

    [Fact]
    public async Task FlushLsn_StaysBehindAnUnconfirmedTransaction_ThenFollowsConfirmation()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(FlushLsn_StaysBehindAnUnconfirmedTransaction_ThenFollowsConfirmation));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();
        await scenario.InsertRangeAsync(1, 1);
        await Wait.UntilAsync(() => recorder.Confirmed.Count == 1, Timeout, () => "the first batch", Ct);
        Lsn firstEnd = recorder.Confirmed[0].Batch.EndLsn;
        await Wait.UntilAsync(() => scenario.ConfirmedFlushAsync().Result >= firstEnd, Timeout, () => $"confirmed_flush_lsn to reach {firstEnd}", Ct);

        recorder.Hold();
        await scenario.InsertRangeAsync(2, 2);
        // Write unpublished WAL after it, so that keepalives carry positions past the held transaction.
        await scenario.ExecuteAsync("create temp table if not exists noise(x int); insert into noise select generate_series(1, 1000)");
        await Wait.UntilAsync(() => recorder.Received.Count == 2, Timeout, () => "the second batch to arrive", Ct);
        ChangeBatch held = recorder.Received[1];

        // Several status intervals (the server's wal_sender_timeout is 2 s, so a status goes out every 667 ms) and
        // monitor ticks pass; the slot must not move past the held commit.
        Lsn server = await ServerLsnAfterAsync(scenario, pump, ticks: 6);
        Lsn confirmedWhileHeld = await scenario.ConfirmedFlushAsync();
        Assert.True(confirmedWhileHeld <= held.CommitLsn, $"confirmed_flush_lsn {confirmedWhileHeld} passed the unconfirmed commit {held.CommitLsn}");
        Assert.True(pump.FlushedLsn <= held.CommitLsn);
        Assert.True(server > held.EndLsn);

        recorder.Release();
        await Wait.UntilAsync(() => scenario.ConfirmedFlushAsync().Result >= held.EndLsn, Timeout, () => $"confirmed_flush_lsn to reach {held.EndLsn} after the release", Ct);
    }

    [Fact]
    public async Task NoSubscriber_NothingIsAcknowledged_AndTheFirstSubscriberGetsEverything()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(NoSubscriber_NothingIsAcknowledged_AndTheFirstSubscriberGetsEverything));
        ReplicationPump pump = scenario.StartPump();
        await scenario.WaitStreamingAsync(pump);
        Lsn before = await scenario.ConfirmedFlushAsync();
        await scenario.InsertRangeAsync(1, 1);
        await scenario.InsertRangeAsync(2, 2);
        await Wait.UntilAsync(() => pump.Status.BacklogBatches == 2, Timeout, () => $"2 batches held; status {pump.Status}", Ct);
        await ServerLsnAfterAsync(scenario, pump, ticks: 4);
        Assert.Equal(before, await scenario.ConfirmedFlushAsync());

        var recorder = new BatchRecorder();
        await using ReplicationSubscription subscription = pump.Subscribe(recorder.OnChangesAsync);
        await Wait.UntilAsync(() => recorder.Confirmed.Count == 2, Timeout, () => "both held batches", Ct);
        Assert.Equal(["1", "2"], recorder.ConfirmedRows.Select(r => r["id"]));
        await Wait.UntilAsync(() => scenario.ConfirmedFlushAsync().Result >= recorder.Confirmed[1].Batch.EndLsn, Timeout, () => "acknowledgement after confirmation", Ct);
    }

    [Fact]
    public async Task QuietPublication_IdlePumpAcknowledgesKeepalivePositions()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(QuietPublication_IdlePumpAcknowledgesKeepalivePositions));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();

        // WAL that the publication does not cover (another table): no batch, but the slot must not pin it.
        await scenario.ExecuteAsync($"create table if not exists {scenario.Table}_other(x int); insert into {scenario.Table}_other select generate_series(1, 10000)");
        Lsn written = Lsn.Parse((await scenario.ScalarAsync<string>("select pg_current_wal_lsn()::text"))!);
        try
        {
            await Wait.UntilAsync(() => scenario.ConfirmedFlushAsync().Result >= written, Timeout, () => $"confirmed_flush_lsn to pass {written} without any batch; status {pump.Status}", Ct);
            Assert.Empty(recorder.Received);
        }
        finally
        {
            await scenario.ExecuteAsync($"drop table if exists {scenario.Table}_other");
        }
    }

    [Fact]
    public async Task ManualPause_HoldsUntilResume_AndReadsNothingMeanwhile()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(ManualPause_HoldsUntilResume_AndReadsNothingMeanwhile));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();
        await scenario.InsertRangeAsync(1, 1);
        await Wait.UntilAsync(() => recorder.Confirmed.Count == 1, Timeout, () => "the first batch", Ct);

        pump.Pause();
        Assert.Equal(PauseReasons.Manual, pump.Status.PauseReasons);
        Lsn receivedAtPause = pump.Status.ReceivedLsn;
        Lsn written = await scenario.InsertRangeAsync(2, 2);
        await ServerLsnAfterAsync(scenario, pump, ticks: 3);
        Assert.Single(recorder.Received);
        Assert.True(pump.Status.ReceivedLsn < written, "nothing read while paused");
        Assert.True(pump.Status.ServerLsn >= written && pump.Status.LagBytes > 0, $"the lag shows the unread WAL; status {pump.Status}");
        Assert.True(receivedAtPause <= pump.Status.ReceivedLsn);

        pump.Resume();
        await Wait.UntilAsync(() => recorder.Confirmed.Count == 2, Timeout, () => "the batch written while paused", Ct);
        Assert.Equal(PauseReasons.None, pump.Status.PauseReasons);
        Assert.Equal(0, pump.Status.ReconnectCount);
    }

    [Fact]
    public async Task ThrowingSubscriber_PausesAtHighWater_AcknowledgesNothing_ThenRecovers()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(ThrowingSubscriber_PausesAtHighWater_AcknowledgesNothing_ThenRecovers));
        ReplicationPump pump = scenario.StartPump(o =>
        {
            o.HighWaterBatches = 10;
            o.LowWaterBatches = 5;
        });
        var good = new BatchRecorder();
        var bad = new BatchRecorder();
        bad.FailWith(_ => new InvalidOperationException("subscriber is broken"));
        await using ReplicationSubscription goodSubscription = pump.Subscribe(good.OnChangesAsync, "good");
        await using ReplicationSubscription badSubscription = pump.Subscribe(bad.OnChangesAsync, "bad");
        await scenario.WaitStreamingAsync(pump);
        Lsn before = await scenario.ConfirmedFlushAsync();

        for (int i = 1; i <= 30; i++)
        {
            await scenario.InsertRangeAsync(i, i);
        }

        await Wait.UntilAsync(() => pump.Status.PauseReasons.HasFlag(PauseReasons.Backpressure), Timeout, () => $"backpressure; status {pump.Status}", Ct);
        ReplicationStatus status = pump.Status;
        Assert.InRange(status.BacklogBatches, 10, 11);
        Assert.Equal(ReplicationErrorKind.SubscriberFailed, status.LastErrorKind);
        Assert.Contains("subscriber is broken", status.LastError, StringComparison.Ordinal);
        await Wait.UntilAsync(() => badSubscription.Failures > 2, Timeout, () => "the failed batch to be retried", Ct);
        Assert.All(bad.Received, b => Assert.Equal(bad.Received[0].CommitLsn, b.CommitLsn));
        await ServerLsnAfterAsync(scenario, pump, ticks: 4);
        Assert.Equal(before, await scenario.ConfirmedFlushAsync());
        Assert.True(good.Confirmed.Count <= 11, "the good subscriber gets at most the backlog while the pump is held");

        bad.FailWith(null);
        await Wait.UntilAsync(() => bad.Confirmed.Count == 30 && good.Confirmed.Count == 30, Timeout, () => $"all 30 batches to both; bad {bad.Confirmed.Count}, good {good.Confirmed.Count}", Ct);
        Assert.Equal(Enumerable.Range(1, 30).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), bad.ConfirmedRows.Select(r => r["id"]));
        Lsn lastEnd = bad.Confirmed[^1].Batch.EndLsn;
        await Wait.UntilAsync(() => scenario.ConfirmedFlushAsync().Result >= lastEnd, Timeout, () => "acknowledgement after recovery", Ct);
    }

    [Fact]
    public async Task SubscriberThatNeverConfirms_PausesAtHighWater_AndHoldsTheSlot()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(SubscriberThatNeverConfirms_PausesAtHighWater_AndHoldsTheSlot));
        ReplicationPump pump = scenario.StartPump(o =>
        {
            o.HighWaterBatches = 5;
            o.LowWaterBatches = 2;
        });
        var stuck = new BatchRecorder();
        stuck.Hold();
        await using ReplicationSubscription subscription = pump.Subscribe(stuck.OnChangesAsync, "stuck");
        await scenario.WaitStreamingAsync(pump);
        Lsn before = await scenario.ConfirmedFlushAsync();
        for (int i = 1; i <= 20; i++)
        {
            await scenario.InsertRangeAsync(i, i);
        }

        await Wait.UntilAsync(() => pump.Status.PauseReasons.HasFlag(PauseReasons.Backpressure), Timeout, () => $"backpressure; status {pump.Status}", Ct);
        await ServerLsnAfterAsync(scenario, pump, ticks: 4);
        Assert.Single(stuck.Received);
        Assert.Equal(before, await scenario.ConfirmedFlushAsync());
        Assert.InRange(pump.Status.BacklogBatches, 5, 6);
        Assert.Equal(ReplicationState.Streaming, pump.Status.State);

        stuck.Release();
        await Wait.UntilAsync(() => stuck.Confirmed.Count == 20, Timeout, () => $"all 20 after release; got {stuck.Confirmed.Count}", Ct);
    }

    [Fact]
    public async Task WalsenderKilledWhilePaused_IsNoticed_AndThePumpReconnects()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(WalsenderKilledWhilePaused_IsNoticed_AndThePumpReconnects));
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();
        int pid = pump.Status.ServerPid!.Value;
        pump.Pause();
        await scenario.InsertRangeAsync(1, 5);

        await scenario.ExecuteAsync($"select pg_terminate_backend({pid})");
        await Wait.UntilAsync(() => pump.Status.ReconnectCount >= 1, Timeout, () => $"the pump to notice the lost walsender while paused; status {pump.Status}", Ct);
        await Wait.UntilAsync(() => pump.Status.ServerPid is int p && p != pid, Timeout, () => $"a new walsender; status {pump.Status}", Ct);
        Assert.Equal(ReplicationErrorKind.ConnectionLost, pump.Status.LastErrorKind);
        Assert.Equal(PauseReasons.Manual, pump.Status.PauseReasons);

        pump.Resume();
        await Wait.UntilAsync(() => recorder.ConfirmedRows.Count() == 5, Timeout, () => "the five rows", Ct);
        Assert.Equal(["1", "2", "3", "4", "5"], recorder.ConfirmedRows.Select(r => r["id"]));
    }

    /// <summary>Waits for <paramref name="ticks"/> fresh probes of the server position by the pump, and returns the last.</summary>
    private static async Task<Lsn> ServerLsnAfterAsync(ReplicationScenario scenario, ReplicationPump pump, int ticks)
    {
        // Each tick writes a little WAL, so every probe sees a new server position.
        Lsn last = pump.Status.ServerLsn ?? Lsn.Invalid;
        for (int i = 0; i < ticks; i++)
        {
            Lsn now = Lsn.Parse((await scenario.ScalarAsync<string>("select pg_current_wal_lsn()::text"))!);
            await scenario.ExecuteAsync("select pg_switch_wal() where false; create temp table if not exists tick(x int); insert into tick values (1)");
            await Wait.UntilAsync(() => pump.Status.ServerLsn is Lsn s && s > now && s > last, Timeout, () => $"probe {i + 1}; status {pump.Status}", Ct);
            last = pump.Status.ServerLsn!.Value;
        }

        return last;
    }
}
