using System.Diagnostics;
using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// <see cref="ILsnTrackerGrain"/> through the cluster client, on three real silos in two regions against the real
/// primary and one hot standby per region. Replay is paused only on the us-east standby, which no test outside this
/// collection uses.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TrackerGrainTests(ClusterFixture fixture) : ClusterTestBase(fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(LsnTestCluster.EuWest)]
    [InlineData(LsnTestCluster.UsEast)]
    public async Task ReadYourWrites_EveryWriteIsVisibleOnTheRegionsStandby_AfterTheWait(string region)
    {
        string table = await CreateTableAsync("ryw_" + region.Replace('-', '_'));
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await using NpgsqlConnection standby = await OpenAsync(StandbyOf(region));
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(region);
        await Wait.UntilAsync(async () => await ScalarAsync<bool>(standby, $"select to_regclass('{table}') is not null"), Deadline, () => "table on the standby");

        for (int i = 1; i <= 25; i++)
        {
            Lsn lsn = await InsertAsync(primary, table, i);
            LsnWaitResult result = await tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(10), Ct);
            Assert.Equal(LsnWaitOutcome.Ready, result.Outcome);
            Assert.True(result.ReplayLsn >= lsn, $"replay {result.ReplayLsn} < {lsn}");
            Assert.True(await ScalarAsync<bool>(standby, $"select exists(select 1 from {table} where id = $1)", (long)i), $"row {i} not visible on the {region} standby after Ready");
        }
    }

    [Theory]
    [InlineData(LsnTestCluster.EuWest)]
    [InlineData(LsnTestCluster.UsEast)]
    public async Task Tracker_RunsOnASiloOfItsRegion_AndReportsItsStatus(string region)
    {
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(region);
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).Health == TrackerHealthStatus.Healthy, Deadline, () => "healthy tracker");
        LsnTrackerStatus status = await tracker.GetStatus();
        Assert.Equal(region, status.Region);
        Assert.Equal(region, Fixture.RegionOfSilo(status.Silo));
        Assert.False(status.IsPrimary);
        Assert.NotNull(status.LastReplay);
        Assert.Null(status.LastError);
        Assert.Equal(status.LastReplay, await tracker.GetLastReplay());
    }

    [Fact]
    public async Task UnknownRegion_FailsAtOnce_NamingTheRegionAndTheRegionsThatExist()
    {
        var sw = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<RegionUnavailableException>(() => Client.GetGrain<ILsnTrackerGrain>("sa-east").GetLastReplay());
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"took {sw.Elapsed}");
        Assert.Equal("sa-east", error.Region);
        Assert.Equal([LsnTestCluster.EuWest, LsnTestCluster.UsEast], error.AvailableRegions.Order(StringComparer.Ordinal));
        Assert.Contains("'sa-east'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'eu-west', 'us-east'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SiloThatJustJoined_HostsItsRegionsTracker_AndWhenItLeavesTheRegionFailsFastAgain()
    {
        // The new silo's metadata is not in the other silos' caches yet when the call arrives at a gateway: placement
        // must wait for it, never guess, and never fail the call for a region that does have a silo.
        Orleans.TestingHost.InProcessSiloHandle joined = await Fixture.StartSiloInLaterRegionAsync();
        try
        {
            LsnTrackerStatus status = await Client.GetGrain<ILsnTrackerGrain>(ClusterFixture.LaterRegion).GetStatus();
            Assert.Equal(joined.SiloAddress.ToParsableString(), status.Silo);
            Assert.Equal(ClusterFixture.LaterRegion, status.Region);
        }
        finally
        {
            await Fixture.Cluster.StopSiloAsync(joined);
        }

        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    await Client.GetGrain<ILsnTrackerGrain>(ClusterFixture.LaterRegion).GetStatus();
                    return false;
                }
                catch (RegionUnavailableException)
                {
                    return true;
                }
            },
            Deadline,
            () => "calls for the region fail with RegionUnavailableException once its only silo stopped");
    }

    [Fact]
    public async Task GracefulStop_EndsPendingWaitsAtOnce_WithSiloUnavailable_InsteadOfWaitingForTheirTimeouts()
    {
        Orleans.TestingHost.InProcessSiloHandle silo = await Fixture.StartSiloInLaterRegionAsync();
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(ClusterFixture.LaterRegion);
        Assert.Equal(silo.SiloAddress.ToParsableString(), (await tracker.GetStatus()).Silo);

        // A position the replica will not reach: without the silo ending it, this wait would last its full 50 s.
        Task<LsnWaitResult> pending = tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(50), Ct);
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == 1, Deadline, () => "the wait pending on the silo");
        var sw = Stopwatch.StartNew();
        Task stop = Fixture.Cluster.StopSiloAsync(silo);
        var error = await Assert.ThrowsAsync<SiloUnavailableException>(() => pending);
        Assert.Contains("shutting down", error.Message, StringComparison.Ordinal);
        await Wait.ForAsync(stop, TimeSpan.FromSeconds(30), "the graceful stop");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"the stop with a pending wait took {sw.Elapsed}");
    }

    [Theory]
    [InlineData("eu west")]
    [InlineData("eu-west'; drop table x; --")]
    [InlineData("-leading-dash")]
    [InlineData("tab\tinside")]
    public async Task InvalidRegionKey_IsRefusedWithAnArgumentException(string region)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Client.GetGrain<ILsnTrackerGrain>(region).GetLastReplay());
        Assert.Contains("region", error.Message, StringComparison.Ordinal);
        var tooLong = await Assert.ThrowsAsync<ArgumentException>(() => Client.GetGrain<ILsnTrackerGrain>(new string('a', 64)).GetLastReplay());
        Assert.Contains("longer than 63", tooLong.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadArguments_ReachTheClientWithTypeAndMessage()
    {
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        Lsn lsn = Lsn.Parse("0/1");
        foreach (TimeSpan timeout in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1), TimeSpan.FromSeconds(61), TimeSpan.MaxValue })
        {
            // Orleans carries an exception's type and message; ArgumentException's message names the parameter.
            var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tracker.RequestAndAwait(lsn, timeout, Ct));
            Assert.Contains("The wait timeout must be positive and at most", error.Message, StringComparison.Ordinal);
            Assert.Contains("'timeout'", error.Message, StringComparison.Ordinal);
            // A refusal is created, never thrown, on the silo: no silo frames to format under a flood, none shown to a client.
            Assert.DoesNotContain("OrleansLsn.Tracking", error.StackTrace ?? "", StringComparison.Ordinal);
            // Nor rethrown by Orleans' invoker on its way out (as a faulted task from the method would be).
            Assert.DoesNotContain("GrainMethodInvoker", error.StackTrace ?? "", StringComparison.Ordinal);
        }

        var invalid = await Assert.ThrowsAsync<ArgumentException>(() => tracker.RequestAndAwait(Lsn.Invalid, null, Ct));
        Assert.Contains("0/0", invalid.Message, StringComparison.Ordinal);
        Assert.Contains("'lsn'", invalid.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("GrainMethodInvoker", invalid.StackTrace ?? "", StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => tracker.RequestNotification(Lsn.Invalid, Client.CreateObjectReference<ILsnObserver>(new RecordingLsnObserver())));

        // Malformed text never becomes an Lsn, so it cannot reach a silo: the client's parse says what is wrong.
        var format = Assert.Throws<FormatException>(() => Lsn.Parse("16/B374D848 "));
        Assert.Contains("16/B374D848", format.Message, StringComparison.Ordinal);
        // The refusals may be the activation's first calls (answered before its replica connection is up): the tracker
        // then still has to reach Healthy, so a refusal that broke it would fail here.
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).Health == TrackerHealthStatus.Healthy, TimeSpan.FromSeconds(20), () => "a healthy tracker after the refusals", Ct);
    }

    [Fact]
    public async Task TenThousandConcurrentWaits_ThroughOneClient_AllComplete_WithoutHoldingTheTurn()
    {
        const int Waits = 10_000;
        string table = await CreateTableAsync("ten_thousand");
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            Lsn lsn = await InsertAsync(primary, table, 1);
            var waits = new Task<LsnWaitResult>[Waits];
            for (int i = 0; i < Waits; i++)
            {
                waits[i] = tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(60), Ct);
            }

            // GetStatus is answered while all of them wait: no wait holds the grain's turn.
            await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == Waits, TimeSpan.FromSeconds(60),
                () => $"{Waits} pending waiters (paused replay)");
            Assert.DoesNotContain(waits, w => w.IsCompleted);

            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
            LsnWaitResult[] results = await Wait.ForAsync(Task.WhenAll(waits), TimeSpan.FromSeconds(60), "all waits released after the resume");
            Assert.All(results, r => Assert.Equal(LsnWaitOutcome.Ready, r.Outcome));
            Assert.Equal(0, (await tracker.GetStatus()).PendingWaiters);
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    [Fact]
    public async Task PausedReplay_TimesOut_NoEarlierThanTheTimeout_AndCancellationRemovesTheWaiterAtOnce()
    {
        string table = await CreateTableAsync("paused_timeout");
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            Lsn lsn = await InsertAsync(primary, table, 1);
            var sw = Stopwatch.StartNew();
            LsnWaitResult timedOut = await tracker.RequestAndAwait(lsn, TimeSpan.FromMilliseconds(500), Ct);
            TimeSpan waited = sw.Elapsed;
            Assert.Equal(LsnWaitOutcome.TimedOut, timedOut.Outcome);
            Assert.True(waited >= TimeSpan.FromMilliseconds(500), $"timed out after only {waited.TotalMilliseconds} ms");
            Assert.True(timedOut.ReplayLsn < lsn);

            using var cts = new CancellationTokenSource();
            Task<LsnWaitResult> pending = tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(60), cts.Token);
            await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == 1, Deadline, () => "one pending waiter");
            sw.Restart();
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
            await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == 0, TimeSpan.FromSeconds(5), () => "the cancelled waiter gone from the tracker");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"cancellation took {sw.Elapsed}");
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    [Fact]
    public async Task RequestNotification_PushesOnce_WhenReplayed()
    {
        string table = await CreateTableAsync("notification");
        using var refs = new ObserverRefs(Client);
        var observer = new RecordingLsnObserver();
        ILsnObserver reference = refs.Create<ILsnObserver>(observer);
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);

        Lsn lsn = await InsertAsync(primary, table, 1);
        await tracker.RequestNotification(lsn, reference);
        await Wait.UntilAsync(() => observer.Replicated.Count == 1, Deadline, () => "one OnLsnReplicated");
        (string region, Lsn requested, Lsn replay) = observer.Replicated[0];
        Assert.Equal(LsnTestCluster.EuWest, region);
        Assert.Equal(lsn, requested);
        Assert.True(replay >= lsn);

        // An already replayed LSN is pushed too (at once), and still only once per request.
        await tracker.RequestNotification(lsn, reference);
        await Wait.UntilAsync(() => observer.Replicated.Count == 2, Deadline, () => "second OnLsnReplicated");
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == 0, Deadline, () => "no pending notification");
        Assert.Equal(2, observer.Replicated.Count);
    }

    [Fact]
    public async Task Subscribe_PushesEveryAdvance_AndUnsubscribeStopsThem()
    {
        string table = await CreateTableAsync("subscribe");
        using var refs = new ObserverRefs(Client);
        var kept = new RecordingLsnObserver();
        var leaving = new RecordingLsnObserver();
        ILsnObserver keptRef = refs.Create<ILsnObserver>(kept);
        ILsnObserver leavingRef = refs.Create<ILsnObserver>(leaving);
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);

        await tracker.Subscribe(keptRef);
        await tracker.Subscribe(leavingRef);
        await tracker.Subscribe(keptRef); // renewing is idempotent
        Assert.Equal(2, (await tracker.GetStatus()).Subscribers);
        for (int i = 1; i <= 5; i++)
        {
            Lsn lsn = await InsertAsync(primary, table, i);
            await Wait.UntilAsync(() => kept.HighestAdvance >= lsn && leaving.HighestAdvance >= lsn, Deadline, () => $"both observers at {lsn}");
        }

        Assert.All(kept.Advanced, a => Assert.Equal(LsnTestCluster.EuWest, a.Region));
        Assert.True(kept.Advanced.Select(a => a.Replay).SequenceEqual(kept.Advanced.Select(a => a.Replay).Order()), "advances arrive in order");

        await tracker.Unsubscribe(leavingRef);
        Assert.Equal(1, (await tracker.GetStatus()).Subscribers);
        int leavingCount = leaving.Advanced.Count;
        Lsn last = await InsertAsync(primary, table, 100);
        await Wait.UntilAsync(() => kept.HighestAdvance >= last, Deadline, () => "the remaining observer gets the next advance");
        Assert.True(leaving.HighestAdvance < last, "an unsubscribed observer got an advance it should not have");
        Assert.Equal(leavingCount, leaving.Advanced.Count);
        await tracker.Unsubscribe(keptRef);
    }

    [Fact]
    public async Task HungObserver_DoesNotStallALiveOne_AndIsDroppedWithinThePushTimeout()
    {
        string table = await CreateTableAsync("hung_observer");
        using var refs = new ObserverRefs(Client);
        var hung = new RecordingLsnObserver();
        var live = new RecordingLsnObserver();
        ILsnObserver hungRef = refs.Create<ILsnObserver>(hung);
        ILsnObserver liveRef = refs.Create<ILsnObserver>(live);
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        hung.HangForever();
        try
        {
            await tracker.Subscribe(hungRef);
            await tracker.Subscribe(liveRef);
            var sw = Stopwatch.StartNew();
            for (int i = 1; i <= 5; i++)
            {
                Lsn lsn = await InsertAsync(primary, table, i);
                await Wait.UntilAsync(() => live.HighestAdvance >= lsn, Deadline, () => $"live observer at {lsn} while another one hangs");
            }

            // Five advances reached the live observer while the hung one had a push in flight (1 s push timeout, so the
            // live one was not waiting behind it); the hung one is dropped after its push timed out.
            await Wait.UntilAsync(async () => (await tracker.GetStatus()).Subscribers == 1, TimeSpan.FromSeconds(10), () => "hung observer dropped");
            Assert.True(hung.Advanced.Count >= 1, "the hung observer never got a push");
        }
        finally
        {
            hung.StopHanging();
            await tracker.Unsubscribe(liveRef);
        }
    }

    [Fact]
    public async Task ObserverThatIsGone_IsDropped_AndLiveObserversGetEveryAdvance()
    {
        // An observer whose object the client no longer has (deleted reference, collected observer): calls to it fail
        // on the client at once. A client that vanished without answering is the hung observer above (its push times
        // out). Hard-killing the shared test cluster's client instead left Orleans' client internals throwing
        // ObjectDisposedException on a background thread, which xUnit counted as a catastrophic failure.
        string table = await CreateTableAsync("gone_observer");
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        var gone = new RecordingLsnObserver();
        ILsnObserver goneRef = Client.CreateObjectReference<ILsnObserver>(gone);
        await tracker.Subscribe(goneRef);
        Client.DeleteObjectReference<ILsnObserver>(goneRef);

        using var refs = new ObserverRefs(Client);
        var live = new RecordingLsnObserver();
        ILsnObserver liveRef = refs.Create<ILsnObserver>(live);
        await tracker.Subscribe(liveRef);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        Lsn first = default;
        for (int i = 1; i <= 3; i++)
        {
            Lsn lsn = await InsertAsync(primary, table, i);
            first = i == 1 ? lsn : first;
            await Wait.UntilAsync(() => live.HighestAdvance >= lsn, Deadline, () => $"live observer at {lsn}");
        }

        await Wait.UntilAsync(async () => (await tracker.GetStatus()).Subscribers == 1, TimeSpan.FromSeconds(15), () => "the gone observer dropped");
        // It may have got the position pushed on subscribing, before its reference was deleted; nothing after.
        Assert.DoesNotContain(gone.Advanced, a => a.Replay >= first);
        await tracker.Unsubscribe(liveRef);
    }

    [Fact]
    public async Task Tracker_StaysActiveWithSubscribers_AndDeactivatesWhenIdle_ClosingItsReplicaConnection()
    {
        const string AppName = "orleanslsn-tracker:us-east";
        string replica = Fixture.Postgres.Standby2ConnectionString;
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        // A replay view another test left on this client would keep the tracker active (as it should) for 2 min.
        await SharedReplayViews.RetireAsync(Client, LsnTestCluster.UsEast);
        Assert.Equal(0, (await tracker.GetStatus()).Views);
        using var refs = new ObserverRefs(Client);
        ILsnObserver observer = refs.Create<ILsnObserver>(new RecordingLsnObserver());
        await tracker.Subscribe(observer);
        await Wait.UntilAsync(async () => await ConnectionsOnAsync(replica, AppName) == 1, Deadline, () => "the tracker's replica connection");

        await ForceCollectionAsync();
        Assert.Equal(1, (await tracker.GetStatus()).Subscribers);
        Assert.Equal(1, await ConnectionsOnAsync(replica, AppName));

        await tracker.Unsubscribe(observer);
        await ForceCollectionAsync();
        await Wait.UntilAsync(async () => await ConnectionsOnAsync(replica, AppName) == 0, Deadline, () => "replica connection closed after deactivation");

        // The next call activates it again.
        Assert.Equal(0, (await tracker.GetStatus()).Subscribers);
        await Wait.UntilAsync(async () => await ConnectionsOnAsync(replica, AppName) == 1, Deadline, () => "replica connection after reactivation");
    }
}
