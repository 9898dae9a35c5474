using Npgsql;
using Orleans.TestingHost;
using OrleansLsn.Client;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// <c>OrleansLsn:Tracker:MaxPendingWaitersPerClient</c> on a cluster of its own (one silo per region, a cap of 5 per
/// caller): a client at its cap is refused, another caller (a grain) is still served, the client's replay view is not
/// affected (its waits are not grain calls), and a place frees up when one of the client's waits ends. Runs alone, with
/// the other tests that start clusters of their own.
/// </summary>
[Collection(FailoverCollection.Name)]
public sealed class PerClientCapTests(PostgresFixture postgres)
{
    private const int Cap = 5;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ClientAtItsCap_IsRefused_AnotherCallerIsServed_AndItsViewStillAnswers()
    {
        await using InProcessTestCluster cluster = await LsnTestCluster.StartAsync(postgres, [LsnTestCluster.EuWest, LsnTestCluster.UsEast], [], settings =>
            settings["OrleansLsn:Tracker:MaxPendingWaitersPerClient"] = Cap.ToString(System.Globalization.CultureInfo.InvariantCulture));
        IClusterClient client = cluster.Client;
        ILsnTrackerGrain tracker = client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).LastReplay is not null, Deadline, () => "the tracker's first replay position");
        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        Lsn written = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);

        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var held = Enumerable.Range(0, Cap).Select(_ => tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(30), cancel.Token)).ToList();
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == Cap, Deadline, () => $"{Cap} pending waits of the client");

        var refused = await Assert.ThrowsAsync<LimitExceededException>(() => tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromSeconds(1), Ct));
        Assert.Equal("OrleansLsn:Tracker:MaxPendingWaitersPerClient", refused.Key);
        Assert.Equal(Cap, refused.Limit);
        Assert.Contains("'eu-west'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("OrleansLsn:Tracker:MaxPendingWaitersPerClient", refused.Message, StringComparison.Ordinal);
        // Refused before the method, never thrown in the silo (a throw there would bring the silo's frames along, the
        // invoker's among them): the cheap refusal a flood needs.
        Assert.DoesNotContain("GrainMethodInvoker", refused.StackTrace ?? "", StringComparison.Ordinal);
        Assert.DoesNotContain("LsnTrackerGrain", refused.StackTrace ?? "", StringComparison.Ordinal);

        // A notification request counts toward the same cap and is refused the same way.
        var notificationRefused = await Assert.ThrowsAsync<LimitExceededException>(() => tracker.RequestNotification(Lsn.MaxValue, client.CreateObjectReference<ILsnObserver>(new RecordingLsnObserver())));
        Assert.Equal("OrleansLsn:Tracker:MaxPendingWaitersPerClient", notificationRefused.Key);
        Assert.DoesNotContain("GrainMethodInvoker", notificationRefused.StackTrace ?? "", StringComparison.Ordinal);

        // Another caller is served: a wait that is ready, and one that has to be held.
        ITrackerCallerGrain other = client.GetGrain<ITrackerCallerGrain>(nameof(ClientAtItsCap_IsRefused_AnotherCallerIsServed_AndItsViewStillAnswers));
        Assert.Equal(LsnWaitOutcome.Ready, (await other.Wait(LsnTestCluster.EuWest, written, TimeSpan.FromSeconds(10))).Outcome);
        Task<LsnWaitResult> otherHeld = other.Wait(LsnTestCluster.EuWest, Lsn.MaxValue, TimeSpan.FromMilliseconds(500));
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters == Cap + 1, Deadline, () => "the other caller's wait held beside the client's");
        Assert.Equal(LsnWaitOutcome.TimedOut, (await Wait.ForAsync(otherHeld, Deadline, "the other caller's held wait")).Outcome);

        // The client's replay view decides in the client: the cap of grain calls does not touch it.
        await using var views = new ReplayViews(client);
        Assert.Equal(LsnWaitOutcome.Ready, (await views.WaitAsync(LsnTestCluster.EuWest, written, TimeSpan.FromSeconds(10), Ct)).Outcome);

        // The client's waits end (cancelled): its place frees up and it is served again.
        await cancel.CancelAsync();
        foreach (Task<LsnWaitResult> wait in held)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Wait.ForAsync(wait, Deadline, "a cancelled held wait"));
        }

        await Wait.UntilAsync(async () => (await tracker.GetStatus()).PendingWaiters <= 1, Deadline, () => "the client's waits gone");
        Assert.Equal(LsnWaitOutcome.TimedOut, (await tracker.RequestAndAwait(Lsn.MaxValue, TimeSpan.FromMilliseconds(200), Ct)).Outcome);
    }
}
