using Npgsql;
using Orleans.TestingHost;
using OrleansLsn.Client;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// A cluster of its own (one silo per region) with small caps, so that a test can reach them: 10 pending waiters per
/// tracker, 3 subscribers per tracker, 2 subscribers per replication slot.
/// </summary>
public sealed class LimitsClusterFixture(PostgresFixture postgres) : IAsyncLifetime
{
    public const int MaxPendingWaiters = 10;
    public const int MaxTrackerSubscribers = 3;
    public const int MaxSlotSubscribers = 2;
    public static readonly TimeSpan NotificationLifetime = TimeSpan.FromSeconds(8);

    private InProcessTestCluster? _cluster;

    public PostgresFixture Postgres { get; } = postgres;

    public IClusterClient Client => (_cluster ?? throw new InvalidOperationException("The cluster did not start.")).Client;

    public async ValueTask InitializeAsync()
    {
        await ReplicationTables.PrepareAsync(Postgres.PrimaryConnectionString, TestSlots.LimitsSlots);
        _cluster = await LsnTestCluster.StartAsync(Postgres, [LsnTestCluster.EuWest, LsnTestCluster.UsEast], [], settings =>
        {
            settings["OrleansLsn:Tracker:MaxPendingWaiters"] = MaxPendingWaiters.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["OrleansLsn:Observers:MaxSubscribers"] = MaxTrackerSubscribers.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["OrleansLsn:Observers:NotificationLifetime"] = NotificationLifetime.ToString();
            settings["OrleansLsn:Replication:MaxSubscribers"] = MaxSlotSubscribers.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }

        await ReplicationTables.DropAsync(Postgres.PrimaryConnectionString, TestSlots.LimitsSlots);
    }
}

/// <summary>
/// The tests on the limits cluster: one fixture for all of them. As a class fixture each class had a cluster of its own,
/// both streaming slot <c>cl_limits</c> and dropping and creating its table: one class's fixture took the table from under
/// the other's subscriber ("relation r_cl_limits does not exist") or collided creating it.
/// </summary>
[CollectionDefinition(Name)]
public sealed class LimitsCollection : ICollectionFixture<LimitsClusterFixture>
{
    public const string Name = "limits cluster";
}

/// <summary>
/// The caps of issue 14 through a real client: past a cap the call fails with <see cref="LimitExceededException"/>
/// (type, key and cap at the client), nothing registered before is disturbed, and the cap frees up as waiters finish.
/// </summary>
[Collection(LimitsCollection.Name)]
public sealed class LimitsTests(LimitsClusterFixture fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IClusterClient Client => fixture.Client;

    [Fact]
    public async Task PendingWaiters_PastTheCap_FailWithLimitExceeded_EarlierOnesComplete_AndTheCapFreesUp()
    {
        const int Cap = LimitsClusterFixture.MaxPendingWaiters;
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).LastReplay is not null, Deadline, () => "the tracker's first replay position");
        await using var primary = new NpgsqlConnection(fixture.Postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        using var observers = new ObserverRefs(Client);
        var recorder = new RecordingLsnObserver();
        ILsnObserver observer = observers.Create<ILsnObserver>(recorder);

        // The cap filled with waits no replica reaches (4 awaits, one of them cancellable, and 5 notifications), so that
        // no other test's WAL can free a place while the refusals are checked.
        using var cancellable = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        Task<LsnWaitResult> cancelled = tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(20), cancellable.Token);
        var stuck = new List<Task<LsnWaitResult>>();
        for (int i = 0; i < 4; i++)
        {
            stuck.Add(tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(8), Ct));
        }

        for (int i = 0; i < 5; i++)
        {
            await tracker.RequestNotification(Lsn.MaxValue, observer);
        }

        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == Cap, Deadline, () => $"{Cap} pending waiters");

        // Cap + 1, both kinds: refused at once with the type, the key and the cap.
        var refused = await Assert.ThrowsAsync<LimitExceededException>(() => tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(1), Ct));
        Assert.Equal("OrleansLsn:Tracker:MaxPendingWaiters", refused.Key);
        Assert.Equal(Cap, refused.Limit);
        Assert.Contains("OrleansLsn:Tracker:MaxPendingWaiters", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"{Cap} pending waiters", refused.Message, StringComparison.Ordinal);
        Assert.Contains("'eu-west'", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("GrainMethodInvoker", refused.StackTrace ?? "", StringComparison.Ordinal);
        var refusedNotification = await Assert.ThrowsAsync<LimitExceededException>(() => tracker.RequestNotification(Lsn.MaxValue, observer));
        Assert.Equal("OrleansLsn:Tracker:MaxPendingWaiters", refusedNotification.Key);
        Assert.Equal(Cap, (await tracker.GetStatus()).PendingWaiters);
        Assert.False(cancelled.IsCompleted, "the cancellable wait ended early");
        Assert.DoesNotContain(stuck, w => w.IsCompleted);

        // A cancelled wait frees its place at once; a wait in that place completes normally with the next write.
        await cancellable.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Wait.ForAsync(cancelled, Deadline, "the cancelled wait"));
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == Cap - 1, Deadline, () => $"{Cap - 1} pending waiters after the cancellation");
        Lsn next = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct) + 1;
        Task<LsnWaitResult> releasable = tracker.RequestAndAwait(next, TimeSpan.FromSeconds(20), Ct);
        await using (var cmd = new NpgsqlCommand("select pg_logical_emit_message(false, 'limits', 'x')", primary))
        {
            await cmd.ExecuteNonQueryAsync(Ct);
        }

        LsnWaitResult ready = await Wait.ForAsync(releasable, Deadline, "the releasable wait after a write");
        Assert.Equal(LsnWaitOutcome.Ready, ready.Outcome);
        LsnWaitResult accepted = await tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromMilliseconds(100), Ct);
        Assert.Equal(LsnWaitOutcome.TimedOut, accepted.Outcome);

        // The rest end on their own (timeouts, notification lifetime); then a full cap of waits is accepted again.
        LsnWaitResult[] timedOut = await Wait.ForAsync(Task.WhenAll(stuck), Deadline, "the stuck waits' timeouts");
        Assert.All(timedOut, r => Assert.Equal(LsnWaitOutcome.TimedOut, r.Outcome));
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == 0, Deadline, () => "every waiter gone (notifications expired)");
        LsnWaitResult[] again = await Task.WhenAll(Enumerable.Range(0, Cap).Select(_ => tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromMilliseconds(300), Ct)));
        Assert.All(again, r => Assert.Equal(LsnWaitOutcome.TimedOut, r.Outcome));
        Assert.Empty(recorder.Replicated);
    }

    [Fact]
    public async Task TrackerSubscribers_PastTheCap_AreRefused_RenewalsAreNot_AndUnsubscribingFreesAPlace()
    {
        const int Cap = LimitsClusterFixture.MaxTrackerSubscribers;
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        using var observers = new ObserverRefs(Client);
        ILsnObserver[] refs = [.. Enumerable.Range(0, Cap + 1).Select(_ => observers.Create<ILsnObserver>(new RecordingLsnObserver()))];
        try
        {
            for (int i = 0; i < Cap; i++)
            {
                await tracker.Subscribe(refs[i]);
            }

            await tracker.Subscribe(refs[0]); // a renewal is not a new subscriber
            var refused = await Assert.ThrowsAsync<LimitExceededException>(() => tracker.Subscribe(refs[Cap]));
            Assert.Equal("OrleansLsn:Observers:MaxSubscribers", refused.Key);
            Assert.Equal(Cap, refused.Limit);
            Assert.Contains("OrleansLsn:Observers:MaxSubscribers", refused.Message, StringComparison.Ordinal);
            Assert.Contains($"{Cap} subscribers", refused.Message, StringComparison.Ordinal);
            Assert.Equal(Cap, (await tracker.GetStatus()).Subscribers);

            await tracker.Unsubscribe(refs[1]);
            await tracker.Subscribe(refs[Cap]);
            Assert.Equal(Cap, (await tracker.GetStatus()).Subscribers);
        }
        finally
        {
            foreach (ILsnObserver o in refs)
            {
                await tracker.Unsubscribe(o);
            }
        }
    }

    [Fact]
    public async Task SlotSubscribers_PastTheCap_AreRefused_AndUnsubscribingFreesAPlace()
    {
        const int Cap = LimitsClusterFixture.MaxSlotSubscribers;
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(TestSlots.Limits);
        using var observers = new ObserverRefs(Client);
        IChangeObserver[] refs = [.. Enumerable.Range(0, Cap + 1).Select(_ => observers.Create<IChangeObserver>(new RecordingChangeObserver()))];
        try
        {
            for (int i = 0; i < Cap; i++)
            {
                await grain.Subscribe(refs[i]);
            }

            await grain.Subscribe(refs[0]);
            var refused = await Assert.ThrowsAsync<LimitExceededException>(() => grain.Subscribe(refs[Cap]));
            Assert.Equal("OrleansLsn:Replication:MaxSubscribers", refused.Key);
            Assert.Equal(Cap, refused.Limit);
            Assert.Contains("OrleansLsn:Replication:MaxSubscribers", refused.Message, StringComparison.Ordinal);
            Assert.Contains($"'{TestSlots.Limits}'", refused.Message, StringComparison.Ordinal);
            Assert.Equal(Cap, (await grain.GetStatus()).Subscribers);

            await grain.Unsubscribe(refs[1]);
            await grain.Subscribe(refs[Cap]);
            Assert.Equal(Cap, (await grain.GetStatus()).Subscribers);
        }
        finally
        {
            foreach (IChangeObserver o in refs)
            {
                await grain.Unsubscribe(o);
            }
        }
    }
}
