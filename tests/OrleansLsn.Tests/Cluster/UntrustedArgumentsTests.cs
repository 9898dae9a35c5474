using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// Arguments a hostile or buggy client can send, through the real client of a cluster: each gets a clear exception of
/// its own type at the client, nothing reaches PostgreSQL, and the silo answers the next good call.
/// </summary>
[Collection(LimitsCollection.Name)]
public sealed class UntrustedArgumentsTests(LimitsClusterFixture fixture)
{
    /// <summary>Keys that are no region or slot name, with what the region refusal says about each.</summary>
    public static readonly TheoryData<string, string> BadNames = new()
    {
        { new string('a', 64), "longer than 63" },
        { new string('a', 100_000), "longer than 63" },
        { "eu-west\u0000", "contains '?'" },
        { "eu\nwest", "contains '?'" },
        { "eu-west\u007f", "contains '?'" },
        { "x'; drop table orleansmembershiptable; --", "contains '''" },
        { "eu-west\u200b", "contains '\u200b'" },
        { " eu-west", "must start with a letter or digit" },
    };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IClusterClient Client => fixture.Client;

    [Fact]
    public async Task Lsn_ThatIsNoWalPosition_IsRefusedByEveryMethod_AndAnyOtherRawValueIsAccepted()
    {
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        using var observers = new ObserverRefs(Client);
        ILsnObserver observer = observers.Create<ILsnObserver>(new RecordingLsnObserver());

        // The wire carries the raw 64-bit value: 0 is the only one that is no WAL position.
        Lsn zero = Lsn.FromUInt64(0);
        foreach (Func<Task> call in new Func<Task>[]
        {
            () => tracker.RequestAndAwait(zero, TimeSpan.FromSeconds(1), Ct),
            () => tracker.IsReplicated(zero),
            () => tracker.RequestNotification(zero, observer),
        })
        {
            var error = await Assert.ThrowsAsync<ArgumentException>(call);
            Assert.Contains("0/0", error.Message, StringComparison.Ordinal);
            Assert.Contains("'lsn'", error.Message, StringComparison.Ordinal);
        }

        // The extremes of the rest are ordinary positions: one far ahead waits and times out, the smallest is replayed.
        Assert.Equal(LsnWaitOutcome.TimedOut, (await tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromMilliseconds(50), Ct)).Outcome);
        Assert.False(await tracker.IsReplicated(Lsn.MaxValue));
        Assert.Equal(LsnWaitOutcome.Ready, (await tracker.RequestAndAwait(Lsn.FromUInt64(1), TimeSpan.FromSeconds(5), Ct)).Outcome);
        Assert.Equal(0, (await tracker.GetStatus()).PendingWaiters);
    }

    [Fact]
    public async Task Timeouts_ThatAreNotPositiveOrAbsurd_AreRefusedWithTheirBounds_AndTheTrackerStaysHealthy()
    {
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        TimeSpan[] bad =
        [
            TimeSpan.Zero, TimeSpan.FromTicks(-1), TimeSpan.FromSeconds(-1), TimeSpan.MinValue, Timeout.InfiniteTimeSpan,
            TimeSpan.FromSeconds(60) + TimeSpan.FromTicks(1), TimeSpan.FromDays(365), TimeSpan.MaxValue,
        ];
        foreach (TimeSpan timeout in bad)
        {
            var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tracker.RequestAndAwait(Lsn.MaxValue, timeout, Ct));
            Assert.Contains("The wait timeout must be positive and at most 00:01:00", error.Message, StringComparison.Ordinal);
            Assert.Contains("'timeout'", error.Message, StringComparison.Ordinal);
        }

        // The smallest positive timeout is a valid wait that times out; the bound itself is accepted.
        Assert.Equal(LsnWaitOutcome.TimedOut, (await tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromTicks(1), Ct)).Outcome);
        using var cts = new CancellationTokenSource();
        Task<LsnWaitResult> longest = tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(60), cts.Token);
        await Infrastructure.Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == 1, TimeSpan.FromSeconds(10), () => "the 60 s wait pending");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => longest);
        await AssertTrackerAnswersAsync(tracker);
    }

    [Fact]
    public async Task WatchReplay_WithLsnZeroOrABadLease_IsRefused_NothingRegistered_AndTheTrackerStaysHealthy()
    {
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        var view = new NoViewObserver();
        IReplayViewObserver reference = Client.CreateObjectReference<IReplayViewObserver>(view);
        try
        {
            int before = (await tracker.GetStatus()).Views;
            var zero = await Assert.ThrowsAsync<ArgumentException>(() => tracker.WatchReplay(reference, Lsn.Invalid, TimeSpan.FromSeconds(1)));
            Assert.Contains("0/0", zero.Message, StringComparison.Ordinal);
            foreach (TimeSpan lease in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1), TimeSpan.FromSeconds(60) + TimeSpan.FromTicks(1), TimeSpan.MaxValue })
            {
                var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tracker.WatchReplay(reference, Lsn.MaxValue, lease));
                Assert.Contains("The demand's lease must be positive and at most 00:01:00", error.Message, StringComparison.Ordinal);
                Assert.Contains("'lease'", error.Message, StringComparison.Ordinal);
            }

            await Assert.ThrowsAsync<ArgumentNullException>(() => tracker.WatchReplay(null!));
            Assert.Equal(before, (await tracker.GetStatus()).Views);
            await AssertTrackerAnswersAsync(tracker);
        }
        finally
        {
            Client.DeleteObjectReference<IReplayViewObserver>(reference);
        }
    }

    private sealed class NoViewObserver : IReplayViewObserver
    {
        public Task OnReplayView(ReplayViewState state) => Task.CompletedTask;
    }

    [Fact]
    public async Task EmptyKey_IsRefusedByTheClientItself_AndNeverSent()
    {
        // Orleans' client refuses an empty string key before any message is built.
        await Assert.ThrowsAsync<ArgumentException>(() => Client.GetGrain<ILsnTrackerGrain>("").GetStatus());
        await Assert.ThrowsAsync<ArgumentException>(() => Client.GetGrain<IReplicationGrain>("").GetStatus());
        await AssertTrackerAnswersAsync(Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest));
    }

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task RegionKey_ThatIsNoRegionName_IsRefusedWithAnArgumentException_AndTheSiloStaysHealthy(string region, string problem)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Client.GetGrain<ILsnTrackerGrain>(region).GetStatus());
        Assert.Contains("Invalid region", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(error.Message, c => char.IsControl(c));
        Assert.True(error.Message.Length < 1_000, $"the message quotes the whole key: {error.Message.Length} characters");
        await Assert.ThrowsAsync<ArgumentException>(() => Client.GetGrain<ILsnTrackerGrain>(region).RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(1), Ct));
        await AssertTrackerAnswersAsync(Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest));
    }

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task SlotKey_ThatIsNoSlotName_IsRefusedBeforeAnySql_AndTheSiloStaysHealthy(string slot, string problem)
    {
        _ = problem;
        var error = await Assert.ThrowsAsync<ReplicationSlotNotConfiguredException>(() => Client.GetGrain<IReplicationGrain>(slot).GetStatus());
        Assert.Contains("cannot be streamed", error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 2_000, $"the message quotes the whole key: {error.Message.Length} characters");
        ReplicationStatus status = await Client.GetGrain<IReplicationGrain>(TestSlots.Limits).GetStatus();
        Assert.Equal(TestSlots.Limits, status.Slot);
    }

    private static async Task AssertTrackerAnswersAsync(ILsnTrackerGrain tracker)
    {
        await Infrastructure.Wait.UntilAsync(async () => (await tracker.GetStatus()).Health == TrackerHealthStatus.Healthy, TimeSpan.FromSeconds(10), () => "a healthy tracker");
        Assert.Equal(LsnWaitOutcome.Ready, (await tracker.RequestAndAwait(Lsn.FromUInt64(1), TimeSpan.FromSeconds(5), Ct)).Outcome);
    }
}
