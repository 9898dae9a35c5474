using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Orleans.TestingHost;
using OrleansLsn.Client;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// <see cref="LsnSubscription"/> and <see cref="ChangeSubscription"/> on the shared cluster: pushes arrive; when the
/// grain loses its subscribers (deactivated, unsubscribed behind the library's back, its region's only silo gone and
/// back) the renewals make pushes resume by themselves; disposing stops pushes and unsubscribes.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SubscriptionTests(ClusterFixture fixture) : ClusterTestBase(fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private static SubscriptionOptions Fast => new()
    {
        RenewalPeriod = TimeSpan.FromMilliseconds(300),
        RetryInitialDelay = TimeSpan.FromMilliseconds(50),
        RetryMaxDelay = TimeSpan.FromMilliseconds(500),
    };

    [Fact]
    public async Task ReplaySubscription_PushesEveryAdvance_AndRenewsPeriodically()
    {
        string table = await CreateTableAsync("sub_replay");
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        var observer = new RecordingLsnObserver();
        await using LsnSubscription subscription = await Client.SubscribeToReplayAsync(LsnTestCluster.EuWest, observer, Fast, Ct);
        Assert.Equal(LsnTestCluster.EuWest, subscription.Region);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        for (int i = 1; i <= 5; i++)
        {
            Lsn lsn = await InsertAsync(primary, table, i);
            await Wait.UntilAsync(() => observer.HighestAdvance >= lsn, Deadline, () => $"advance to {lsn}, have {observer.HighestAdvance}");
        }

        Assert.All(observer.Advanced, a => Assert.Equal(LsnTestCluster.EuWest, a.Region));
        Assert.True(subscription.Pushes >= 1);
        await Wait.UntilAsync(() => subscription.Resubscribed >= 2, Deadline, () => $"two renewals at 300 ms, have {subscription.Resubscribed}");
        Assert.Equal(0, subscription.FailedRenewals);
        Assert.Null(subscription.LastError);
    }

    [Fact]
    public async Task ReplaySubscription_UnsubscribedBehindItsBack_IsRenewedAtTheNextPeriod_OnTheSubscriptionsClock()
    {
        string table = await CreateTableAsync("sub_behind_back");
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = new SubscriptionOptions { RenewalPeriod = TimeSpan.FromSeconds(10), TimeProvider = time };
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        var observer = new RecordingLsnObserver();
        await using LsnSubscription subscription = await Client.SubscribeToReplayAsync(LsnTestCluster.EuWest, observer, options, Ct);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        Lsn first = await InsertAsync(primary, table, 1);
        await Wait.UntilAsync(() => observer.HighestAdvance >= first, Deadline, () => $"advance to {first}");

        // What a new activation looks like to this client: the grain no longer knows the observer.
        await tracker.Unsubscribe(subscription.ObserverReference);
        Assert.Equal(0, subscription.Resubscribed);

        time.Advance(options.RenewalPeriod);
        await Wait.UntilAsync(() => subscription.Resubscribed == 1, Deadline, () => "the renewal due after one period");
        Lsn second = await InsertAsync(primary, table, 2);
        await Wait.UntilAsync(() => observer.HighestAdvance >= second, Deadline, () => $"pushes resumed up to {second}, have {observer.HighestAdvance}");
    }

    [Fact]
    public async Task ReplaySubscription_TrackerDeactivated_NewActivationGetsTheSubscriptionBack_AndPushesResume()
    {
        string table = await CreateTableAsync("sub_deactivated");
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        var observer = new RecordingLsnObserver();
        await using LsnSubscription subscription = await Client.SubscribeToReplayAsync(LsnTestCluster.UsEast, observer, Fast, Ct);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        Lsn before = await InsertAsync(primary, table, 1);
        await Wait.UntilAsync(() => observer.HighestAdvance >= before, Deadline, () => $"advance to {before}");

        await Wait.ForAsync(Fixture.Cluster.DeactivateAsync(tracker), Deadline, "deactivating the tracker");
        long renewals = subscription.Resubscribed;
        Lsn after = await InsertAsync(primary, table, 2);
        await Wait.UntilAsync(() => observer.HighestAdvance >= after, Deadline, () => $"pushes from the new activation up to {after}, have {observer.HighestAdvance}");
        Assert.True(subscription.Resubscribed > renewals, "pushes resumed without a renewal");
        Assert.Equal(1, (await tracker.GetStatus()).Subscribers);
    }

    [Fact]
    public async Task ReplaySubscription_RegionsOnlySiloStopsAndAnotherStarts_RenewalsFailWithBackoff_ThenPushesResume()
    {
        string region = ClusterFixture.LaterRegion;
        string table = await CreateTableAsync("sub_region_back");
        InProcessSiloHandle first = await Fixture.StartSiloInLaterRegionAsync();
        InProcessSiloHandle? second = null;
        try
        {
            var observer = new RecordingLsnObserver();
            await using LsnSubscription subscription = await Client.SubscribeToReplayAsync(region, observer, Fast, Ct);
            await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
            Lsn before = await InsertAsync(primary, table, 1);
            await Wait.UntilAsync(() => observer.HighestAdvance >= before, Deadline, () => $"advance to {before}");

            await Fixture.Cluster.StopSiloAsync(first);
            await Wait.UntilAsync(() => subscription.FailedRenewals >= 3, Deadline, () => $"failed renewals while {region} has no silo, have {subscription.FailedRenewals}");
            Assert.IsType<RegionUnavailableException>(subscription.LastError);

            second = await Fixture.StartSiloInLaterRegionAsync();
            long renewals = subscription.Resubscribed;
            await Wait.UntilAsync(() => subscription.Resubscribed > renewals, Deadline, () => "a successful renewal once the region has a silo again");
            Lsn after = await InsertAsync(primary, table, 2);
            await Wait.UntilAsync(() => observer.HighestAdvance >= after, Deadline, () => $"pushes from the new silo up to {after}, have {observer.HighestAdvance}");
            Assert.Equal(second.SiloAddress.ToParsableString(), (await Client.GetGrain<ILsnTrackerGrain>(region).GetStatus()).Silo);
        }
        finally
        {
            foreach (InProcessSiloHandle? silo in new[] { first, second })
            {
                if (silo is not null && silo.IsActive)
                {
                    await Fixture.Cluster.StopSiloAsync(silo);
                }
            }
        }
    }

    [Fact]
    public async Task ReplaySubscription_Dispose_Unsubscribes_AndNoPushReachesTheObserverAfterwards()
    {
        string table = await CreateTableAsync("sub_replay_dispose");
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        int others = (await tracker.GetStatus()).Subscribers;
        var observer = new RecordingLsnObserver();
        LsnSubscription subscription = await Client.SubscribeToReplayAsync(LsnTestCluster.EuWest, observer, Fast, Ct);
        Assert.Equal(others + 1, (await tracker.GetStatus()).Subscribers);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        Lsn before = await InsertAsync(primary, table, 1);
        await Wait.UntilAsync(() => observer.HighestAdvance >= before, Deadline, () => $"advance to {before}");

        await subscription.DisposeAsync();
        await subscription.DisposeAsync(); // idempotent
        Assert.True(subscription.IsDisposed);
        Assert.Equal(others, (await tracker.GetStatus()).Subscribers);
        int pushes = observer.Advanced.Count;

        // A witness subscribed directly gets the next advance; by then the disposed one would have had it too.
        using var refs = new ObserverRefs(Client);
        var witness = new RecordingLsnObserver();
        ILsnObserver witnessRef = refs.Create<ILsnObserver>(witness);
        await tracker.Subscribe(witnessRef);
        try
        {
            Lsn after = await InsertAsync(primary, table, 2);
            await Wait.UntilAsync(() => witness.HighestAdvance >= after, Deadline, () => $"the witness at {after}");
            Assert.Equal(pushes, observer.Advanced.Count);
            Assert.True(observer.HighestAdvance < after);
        }
        finally
        {
            await tracker.Unsubscribe(witnessRef);
        }
    }

    [Fact]
    public async Task SubscribeToChanges_ThenCommitAtOnce_OnAFreshSlot_DeliversTheCommit_EveryRound()
    {
        const int Rounds = 4;
        string slot = TestSlots.ClientFirst;
        string table = TestSlots.Table(slot);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        for (int round = 1; round <= Rounds; round++)
        {
            Assert.Equal(0L, await ScalarAsync<long>(primary, "select count(*) from pg_replication_slots where slot_name = $1", slot));
            var observer = new RecordingChangeObserver();
            await using (ChangeSubscription subscription = await Client.SubscribeToChangesAsync(slot, observer, Fast, Ct))
            {
                await ExecAsync(primary, $"insert into {table} values ($1, 'round')", (long)round);
                string id = round.ToString(CultureInfo.InvariantCulture);
                await Wait.UntilAsync(() => ConfirmedIds(observer).Contains(id), Deadline, () => $"round {round}: the row committed right after the subscription started");
            }

            await ForceCollectionAsync();
            await Wait.UntilAsync(
                async () => await ScalarAsync<long>(primary, "select count(*) from pg_replication_slots where slot_name = $1 and active_pid is not null", slot) == 0,
                Deadline,
                () => $"round {round}: slot released after deactivation");
            await ExecAsync(primary, "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active", slot);
        }
    }

    [Fact]
    public async Task ChangeSubscription_DeliversChanges_AndAfterTheGrainDeactivated_RenewalResumesThemWithNothingLost()
    {
        string slot = TestSlots.ClientChanges;
        string table = TestSlots.Table(slot);
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        var observer = new RecordingChangeObserver();
        await using ChangeSubscription subscription = await Client.SubscribeToChangesAsync(slot, observer, Fast, Ct);
        Assert.Equal(slot, subscription.Slot);
        await WaitStreamingAsync(grain);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        for (int i = 1; i <= 3; i++)
        {
            await ExecAsync(primary, $"insert into {table} values ($1, 'before')", (long)i);
        }

        await Wait.UntilAsync(() => ConfirmedIds(observer).Count == 3, Deadline, () => $"rows 1-3, have {ConfirmedIds(observer).Count}");

        await Wait.ForAsync(Fixture.Cluster.DeactivateAsync(grain), Deadline, "deactivating the replication grain");
        long renewals = subscription.Resubscribed;
        for (int i = 4; i <= 6; i++)
        {
            await ExecAsync(primary, $"insert into {table} values ($1, 'after')", (long)i);
        }

        await Wait.UntilAsync(() => ConfirmedIds(observer).Count == 6, Deadline, () => $"rows 1-6 after the reactivation, have {string.Join(",", ConfirmedIds(observer))}");
        Assert.Equal(Enumerable.Range(1, 6).Select(i => i.ToString(CultureInfo.InvariantCulture)), ConfirmedIds(observer).Order(StringComparer.Ordinal));
        Assert.True(subscription.Resubscribed > renewals);
        Assert.Equal(1, (await grain.GetStatus()).Subscribers);
        Assert.True(subscription.Pushes >= 2);
    }

    [Fact]
    public async Task ChangeSubscription_Dispose_Unsubscribes_AndNoBatchReachesTheObserverAfterwards()
    {
        string slot = TestSlots.ClientDispose;
        string table = TestSlots.Table(slot);
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        var observer = new RecordingChangeObserver();
        ChangeSubscription subscription = await Client.SubscribeToChangesAsync(slot, observer, Fast, Ct);
        await WaitStreamingAsync(grain);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await ExecAsync(primary, $"insert into {table} values (1, 'before')");
        await Wait.UntilAsync(() => ConfirmedIds(observer).Count == 1, Deadline, () => "row 1");

        await subscription.DisposeAsync();
        Assert.Equal(0, (await grain.GetStatus()).Subscribers);
        long calls = observer.Recorder.Calls;

        using var refs = new ObserverRefs(Client);
        var witness = new RecordingChangeObserver();
        IChangeObserver witnessRef = refs.Create<IChangeObserver>(witness);
        await grain.Subscribe(witnessRef);
        try
        {
            await ExecAsync(primary, $"insert into {table} values (2, 'after')");
            await Wait.UntilAsync(() => ConfirmedIds(witness).Contains("2"), Deadline, () => "the witness got row 2");
            Assert.Equal(calls, observer.Recorder.Calls);
            Assert.DoesNotContain("2", ConfirmedIds(observer));
        }
        finally
        {
            await grain.Unsubscribe(witnessRef);
        }
    }

    [Fact]
    public async Task FirstSubscribe_Fails_ForAnUnknownRegionOrSlot_WithTheGrainsError()
    {
        var region = await Assert.ThrowsAsync<RegionUnavailableException>(() => Client.SubscribeToReplayAsync("sa-east", new RecordingLsnObserver(), cancellationToken: Ct));
        Assert.Equal("sa-east", region.Region);
        var slot = await Assert.ThrowsAsync<ReplicationSlotNotConfiguredException>(() => Client.SubscribeToChangesAsync("not_configured", new RecordingChangeObserver(), cancellationToken: Ct));
        Assert.Equal("not_configured", slot.Slot);
    }

    [Fact]
    public async Task InvalidOptions_AreRefused_NamingEveryProblem()
    {
        var options = new SubscriptionOptions
        {
            RenewalPeriod = TimeSpan.FromMinutes(2),
            RetryInitialDelay = TimeSpan.FromSeconds(2),
            RetryMaxDelay = TimeSpan.FromSeconds(1),
            CallTimeout = TimeSpan.Zero,
        };
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Client.SubscribeToReplayAsync(LsnTestCluster.EuWest, new RecordingLsnObserver(), options, Ct));
        Assert.Equal("options", error.ParamName);
        foreach (string name in new[] { "RenewalPeriod", "RetryMaxDelay", "CallTimeout" })
        {
            Assert.Contains(name + " must be", error.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>The slot exists (the pump creates it) and streams: only changes written after that are in it.</summary>
    private static Task WaitStreamingAsync(IReplicationGrain grain) =>
        Wait.UntilAsync(async () => (await grain.GetStatus()) is { State: ReplicationState.Streaming, ServerPid: not null }, Deadline, () => $"slot {grain.GetPrimaryKeyString()} streaming");

    private static List<string> ConfirmedIds(RecordingChangeObserver observer) =>
        observer.Recorder.ConfirmedRows.Select(r => r["id"]!).Distinct().ToList();
}
