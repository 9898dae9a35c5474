using System.Diagnostics;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// <see cref="ReplayView"/> on the shared cluster against the real primary and standbys: waits decided in the client,
/// never <c>Ready</c> before the replica has the row, timeouts and cancellation exact, a registration dropped behind the
/// client's back repaired, and the read routes of <see cref="ReadYourWritesSession"/>. Replay is paused only on the
/// us-east standby, always resumed in <c>finally</c>.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReplayViewTests(ClusterFixture fixture) : ReplicaDataSourcesTestBase(fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task WaitForAReplayedLsn_ReturnsAtOnce_WithNoGrainCall()
    {
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(Client);
        await using var views = new ReplayViews(grains);
        await using NpgsqlConnection primary = await PrimarySource.OpenConnectionAsync(Ct);
        Lsn written = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
        Assert.Equal(LsnWaitOutcome.Ready, (await views.WaitAsync(LsnTestCluster.EuWest, written, Deadline, Ct)).Outcome);
        ReplayView view = views.Get(LsnTestCluster.EuWest);
        // Ready can also come from a pull, or the tracker may have just moved (a new activation starts with what it
        // knows); the view's own position follows the tracker's states.
        await Wait.UntilAsync(() => view.Covers(written), Deadline, () => $"the view to cover {written}: it is at {view.Replay} ({view.Pushes} pushes, {view.WatchCalls} watch calls, {view.PullCalls} pulls)", Ct);

        int grainCallsBefore = calls.GetGrainCalls;
        long watchCallsBefore = view.WatchCalls;
        for (int i = 0; i < 10_000; i++)
        {
            ValueTask<LsnWaitResult> wait = view.WaitAsync(written, TimeSpan.FromSeconds(1), Ct);
            Assert.True(wait.IsCompletedSuccessfully, $"wait {i} did not complete at once");
            Assert.Equal(LsnWaitOutcome.Ready, (await wait).Outcome);
        }

        Assert.Equal(grainCallsBefore, calls.GetGrainCalls);
        Assert.Equal(watchCallsBefore, view.WatchCalls);
        Assert.Equal(0, calls.WaitCalls);
        Assert.Equal(0, view.PendingWaits);
    }

    [Fact]
    public async Task ReplayPausedAndResumedAtRandom_NoWaitIsReadyBeforeTheReplicaHasTheRow_EveryWaitAnsweredOnce()
    {
        const int Rounds = 30;
        const int RowsPerRound = 5;
        const int WaitsPerRow = 15;
        string table = await CreateTableAsync("view_no_false_ready");
        await using var views = new ReplayViews(Client, new ReplayViewOptions { StaleAfter = TimeSpan.FromMilliseconds(300) });
        ReplayView view = views.Get(LsnTestCluster.UsEast);
        var random = new Random(23);
        int ready = 0;
        int timedOut = 0;
        int falseReady = 0;
        var problems = new List<string>();
        await using NpgsqlConnection primary = await PrimarySource.OpenConnectionAsync(Ct);
        bool paused = false;
        try
        {
            for (int round = 0; round < Rounds; round++)
            {
                if (random.Next(2) == 0 != paused)
                {
                    paused = !paused;
                    await (paused
                        ? ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct)
                        : ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct));
                }

                var waits = new List<Task>();
                for (int row = 0; row < RowsPerRound; row++)
                {
                    long id = (round * RowsPerRound) + row;
                    Lsn lsn = await InsertAsync(primary, table, id);
                    for (int w = 0; w < WaitsPerRow; w++)
                    {
                        TimeSpan timeout = TimeSpan.FromMilliseconds(random.Next(20, 400));
                        waits.Add(CheckAsync(id, lsn, timeout));
                    }
                }

                // Replay resumes half-way through some rounds, so that waits end both ways.
                if (paused && random.Next(3) == 0)
                {
                    paused = false;
                    await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
                }

                await Wait.ForAsync(Task.WhenAll(waits), Deadline, $"round {round}'s waits");
            }
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }

        string figures = $"{ready} ready, {timedOut} timed out, {falseReady} ready before the row was there; {view.Pushes} pushes, {view.WatchCalls} watch calls, {view.PullCalls} pulls";
        TestContext.Current.TestOutputHelper?.WriteLine(figures);
        Assert.True(problems.Count == 0, string.Join("; ", problems.Take(5)) + $" ({figures})");
        Assert.Equal(0, falseReady);
        Assert.Equal(Rounds * RowsPerRound * WaitsPerRow, ready + timedOut);
        Assert.True(ready > 0 && timedOut > 0, $"both outcomes are expected with replay paused at random ({figures})");
        Assert.Equal(0, view.PendingWaits);

        async Task CheckAsync(long id, Lsn lsn, TimeSpan timeout)
        {
            var sw = Stopwatch.StartNew();
            LsnWaitResult result = await view.WaitAsync(lsn, timeout, Ct);
            TimeSpan elapsed = sw.Elapsed;
            if (result.IsReady)
            {
                // Right after Ready: the row must be on the replica.
                await using NpgsqlConnection replica = await UsEastSource.OpenConnectionAsync(Ct);
                bool there = await ScalarAsync<bool>(replica, $"select exists(select 1 from {table} where id = $1)", id);
                lock (problems)
                {
                    ready++;
                    if (!there)
                    {
                        falseReady++;
                        problems.Add($"row {id} ({lsn}) missing on the replica after Ready at {result.ReplayLsn}");
                    }
                }
            }
            else
            {
                lock (problems)
                {
                    timedOut++;
                    if (elapsed < timeout)
                    {
                        problems.Add($"timed out after {elapsed.TotalMilliseconds:0.0} ms, before its {timeout.TotalMilliseconds} ms");
                    }
                    else if (elapsed > timeout + TimeSpan.FromSeconds(2))
                    {
                        problems.Add($"timed out only after {elapsed.TotalMilliseconds:0} ms for a {timeout.TotalMilliseconds} ms timeout");
                    }
                }
            }
        }
    }

    [Fact]
    public async Task Timeout_EndsTheWaitAtItsTimeout_AndCancellationRemovesTheWaiterAtOnce()
    {
        await using var views = new ReplayViews(Client);
        await using NpgsqlConnection primary = await PrimarySource.OpenConnectionAsync(Ct);
        Lsn written = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
        ReplayView view = views.Get(LsnTestCluster.EuWest);
        Assert.Equal(LsnWaitOutcome.Ready, (await view.WaitAsync(written, Deadline, Ct)).Outcome);
        Lsn never = written + (1UL << 40);

        var sw = Stopwatch.StartNew();
        LsnWaitResult timedOut = await view.WaitAsync(never, TimeSpan.FromMilliseconds(300), Ct);
        Assert.Equal(LsnWaitOutcome.TimedOut, timedOut.Outcome);
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(300), $"timed out after only {sw.Elapsed.TotalMilliseconds} ms");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"timed out only after {sw.Elapsed}");
        Assert.NotNull(timedOut.ReplayLsn);
        Assert.True(timedOut.ReplayLsn >= written);
        Assert.Equal(0, view.PendingWaits);

        using var cancel = new CancellationTokenSource();
        ValueTask<LsnWaitResult> cancellable = view.WaitAsync(never, TimeSpan.FromSeconds(30), cancel.Token);
        Assert.Equal(1, view.PendingWaits);
        await cancel.CancelAsync();
        Assert.Equal(0, view.PendingWaits);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await cancellable);

        Assert.Throws<ArgumentException>(() => view.WaitAsync(Lsn.Invalid, TimeSpan.FromSeconds(1), Ct));
        Assert.Throws<ArgumentOutOfRangeException>(() => view.WaitAsync(written, TimeSpan.Zero, Ct));
        Assert.Throws<ArgumentOutOfRangeException>(() => view.WaitAsync(written, TimeSpan.FromMinutes(2), Ct));
    }

    [Fact]
    public async Task RegistrationDroppedBehindTheClientsBack_TheNextWaitRegistersAgain_AndIsReady()
    {
        string table = await CreateTableAsync("view_dropped");
        await using var views = new ReplayViews(Client, new ReplayViewOptions { StaleAfter = TimeSpan.FromMilliseconds(300) });
        await using NpgsqlConnection primary = await PrimarySource.OpenConnectionAsync(Ct);
        ReplayView view = views.Get(LsnTestCluster.EuWest);
        Assert.Equal(LsnWaitOutcome.Ready, (await view.WaitAsync(await InsertAsync(primary, table, 1), Deadline, Ct)).Outcome);
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        int viewsBefore = (await tracker.GetStatus()).Views;

        await tracker.UnwatchReplay(view.ObserverReference);
        Assert.Equal(viewsBefore - 1, (await tracker.GetStatus()).Views);

        for (long id = 2; id <= 6; id++)
        {
            Lsn lsn = await InsertAsync(primary, table, id);
            LsnWaitResult result = await view.WaitAsync(lsn, Deadline, Ct);
            Assert.Equal(LsnWaitOutcome.Ready, result.Outcome);
            await using NpgsqlConnection replica = await EuWestSource.OpenConnectionAsync(Ct);
            Assert.True(await ScalarAsync<bool>(replica, $"select exists(select 1 from {table} where id = $1)", id));
        }

        Assert.Equal(viewsBefore, (await tracker.GetStatus()).Views);
    }

    [Fact]
    public async Task Routing_EveryPolicy_WithUsEastPaused_AndEuWestCaughtUp()
    {
        string table = await CreateTableAsync("view_routing");
        await using var views = new ReplayViews(Client);
        var any = new ReadYourWritesSession(Client, PrimarySource, Replicas, new ReadYourWritesOptions { OnTimeout = ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary, ReplicaOrder = [LsnTestCluster.EuWest] }, views: views);
        var primaryOnTimeout = new ReadYourWritesSession(Client, PrimarySource, Replicas, new ReadYourWritesOptions { OnTimeout = ReadYourWritesTimeoutPolicy.UsePrimary, WaitTimeout = TimeSpan.FromMilliseconds(400) }, views: views);
        var throwing = new ReadYourWritesSession(Client, PrimarySource, Replicas, new ReadYourWritesOptions { OnTimeout = ReadYourWritesTimeoutPolicy.Throw, WaitTimeout = TimeSpan.FromMilliseconds(400) }, views: views);
        await using NpgsqlConnection primary = await PrimarySource.OpenConnectionAsync(Ct);

        // No write yet: the replica asked for, at once.
        await using (ReadYourWritesRead read = await any.OpenReadAsync(LsnTestCluster.UsEast, Ct))
        {
            Assert.Equal((ReadRoute.Replica, ReadReason.NoWrite, LsnTestCluster.UsEast), (read.Route, read.Reason, read.Region));
        }

        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            Lsn lsn = await InsertAsync(primary, table, 1);
            foreach (ReadYourWritesSession session in new[] { any, primaryOnTimeout, throwing })
            {
                session.RecordWrite(lsn);
            }

            // eu-west has the write once its view says so; us-east cannot have it.
            Assert.Equal(LsnWaitOutcome.Ready, (await views.WaitAsync(LsnTestCluster.EuWest, lsn, Deadline, Ct)).Outcome);
            ReplayView euWest = views.Get(LsnTestCluster.EuWest);
            await Wait.UntilAsync(() => euWest.Covers(lsn), Deadline, () => $"eu-west's view to cover {lsn}: it is at {euWest.Replay}", Ct);
            await using (ReadYourWritesRead read = await any.OpenReadAsync(LsnTestCluster.UsEast, Ct))
            {
                Assert.Equal((ReadRoute.OtherReplica, ReadReason.OtherReplicaHadWrite, LsnTestCluster.EuWest), (read.Route, read.Reason, read.Region));
                Assert.Equal(TimeSpan.Zero, read.Waited);
                Assert.True(await ScalarAsync<bool>(read.Connection, $"select exists(select 1 from {table} where id = 1)"));
                Assert.Contains("'eu-west'", read.ToString(), StringComparison.Ordinal);
            }

            await using (ReadYourWritesRead read = await any.OpenReadAsync(LsnTestCluster.EuWest, Ct))
            {
                Assert.Equal((ReadRoute.Replica, ReadReason.Replayed, LsnTestCluster.EuWest), (read.Route, read.Reason, read.Region));
            }

            await using (ReadYourWritesRead read = await primaryOnTimeout.OpenReadAsync(LsnTestCluster.UsEast, Ct))
            {
                Assert.Equal((ReadRoute.Primary, ReadReason.TimedOut, (string?)null), (read.Route, read.Reason, read.Region));
                Assert.True(read.Waited >= TimeSpan.FromMilliseconds(400), $"waited only {read.Waited}");
                Assert.False(await ScalarAsync<bool>(read.Connection, "select pg_is_in_recovery()"));
            }

            var error = await Assert.ThrowsAsync<ReadYourWritesTimeoutException>(() => throwing.OpenReadAsync(LsnTestCluster.UsEast, Ct));
            Assert.Equal(lsn, error.Lsn);

            // A write no replica has: the primary.
            any.RecordWrite(lsn + (1UL << 40));
            await using (ReadYourWritesRead read = await any.OpenReadAsync(LsnTestCluster.UsEast, Ct))
            {
                Assert.Equal((ReadRoute.Primary, ReadReason.NoReplicaHadWrite, (string?)null), (read.Route, read.Reason, read.Region));
                Assert.False(await ScalarAsync<bool>(read.Connection, "select pg_is_in_recovery()"));
            }
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }

        // Replay resumed: us-east gets its own read again after a wait.
        await using (ReadYourWritesRead read = await throwing.OpenReadAsync(LsnTestCluster.UsEast, Ct))
        {
            Assert.Equal(ReadRoute.Replica, read.Route);
            Assert.Contains(read.Reason, new[] { ReadReason.Replayed, ReadReason.ReplayedAfterWait });
        }
    }

    [Fact]
    public async Task ViewUnusedForItsIdleLifetime_IsRetiredAndUnregistered_TheNextWaitStartsANewOne()
    {
        await using var views = new ReplayViews(Client, new ReplayViewOptions { IdleLifetime = TimeSpan.FromMilliseconds(300) });
        await using NpgsqlConnection primary = await PrimarySource.OpenConnectionAsync(Ct);
        Lsn written = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
        ILsnTrackerGrain tracker = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        int before = (await tracker.GetStatus()).Views;
        ReplayView first = views.Get(LsnTestCluster.UsEast);
        Assert.Equal(LsnWaitOutcome.Ready, (await first.WaitAsync(written, Deadline, Ct)).Outcome);
        Assert.Equal(before + 1, (await tracker.GetStatus()).Views);

        await Wait.UntilAsync(() => views.Regions.Count == 0, Deadline, () => $"the idle view retired (regions: {string.Join(", ", views.Regions)})", Ct);
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).Views == before, Deadline, () => "the tracker to forget the retired view", Ct);
        Assert.Throws<ObjectDisposedException>(() => first.WaitAsync(written + (1UL << 40), TimeSpan.FromSeconds(1), Ct));

        // The session-level entry point starts a new view for the region.
        Assert.Equal(LsnWaitOutcome.Ready, (await views.WaitAsync(LsnTestCluster.UsEast, written, Deadline, Ct)).Outcome);
        Assert.NotSame(first, views.Get(LsnTestCluster.UsEast));
    }

    [Fact]
    public async Task TrackerUnreachable_ThousandsOfNewWaits_CallAtTheBackoffsPace_AndEachTimesOutAtItsTimeout()
    {
        var unreachable = new SiloUnavailableException("simulated: the tracker's silo is unreachable");
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(Client, _ => unreachable);
        calls.FailWatch = () => unreachable;
        await using var views = new ReplayViews(grains, new ReplayViewOptions { StaleAfter = TimeSpan.FromMilliseconds(200), RetryInitialDelay = TimeSpan.FromMilliseconds(50), RetryMaxDelay = TimeSpan.FromMilliseconds(400) });
        ReplayView view = views.Get(LsnTestCluster.EuWest);
        await using NpgsqlConnection primary = await PrimarySource.OpenConnectionAsync(Ct);
        Lsn start = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);

        // 2 000 waits for ever higher LSNs over about 1.5 s: each one is past the demand the view could send.
        TimeSpan timeout = TimeSpan.FromMilliseconds(800);
        var sw = Stopwatch.StartNew();
        var waits = new List<Task<(LsnWaitResult Result, TimeSpan Elapsed)>>();
        for (int i = 0; i < 2_000; i++)
        {
            Lsn target = start + (ulong)(1_000 + i);
            waits.Add(TimedAsync(() => view.WaitAsync(target, timeout, Ct)));
            if (i % 100 == 99)
            {
                await Task.Delay(75, Ct);
            }
        }

        var results = await Wait.ForAsync(Task.WhenAll(waits), Deadline, "every wait to end");
        TimeSpan elapsed = sw.Elapsed;
        string figures = $"{calls.WatchCalls} WatchReplay calls and {calls.WaitCalls} RequestAndAwait calls in {elapsed.TotalSeconds:0.0} s for 2 000 waits";
        TestContext.Current.TestOutputHelper?.WriteLine(figures);
        Assert.All(results, r => Assert.Equal(LsnWaitOutcome.TimedOut, r.Result.Outcome));
        Assert.All(results, r => Assert.True(r.Elapsed >= timeout && r.Elapsed < timeout + TimeSpan.FromSeconds(2), $"ended after {r.Elapsed.TotalMilliseconds:0} ms ({figures})"));
        // With a backoff from 50 to 400 ms the calls are a few per second, whatever the number of waits.
        Assert.True(calls.WatchCalls <= 40, figures);
        Assert.True(calls.WaitCalls <= 60, figures);
        Assert.Equal(0, view.PendingWaits);

        static async Task<(LsnWaitResult, TimeSpan)> TimedAsync(Func<ValueTask<LsnWaitResult>> wait)
        {
            var own = Stopwatch.StartNew();
            LsnWaitResult result = await wait();
            return (result, own.Elapsed);
        }
    }

    [Fact]
    public void RoutingOptions_AreChecked()
    {
        var unknown = Assert.Throws<ArgumentException>(() => new ReadYourWritesSession(Client, PrimarySource, Replicas, new ReadYourWritesOptions { ReplicaOrder = ["ap-north"] }));
        Assert.Contains("'ap-north'", unknown.Message, StringComparison.Ordinal);
        var noView = Assert.Throws<ArgumentException>(() => new ReadYourWritesSession(Client, PrimarySource, Replicas, new ReadYourWritesOptions { OnTimeout = ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary, UseReplayView = false }));
        Assert.Contains("UseReplayView", noView.Message, StringComparison.Ordinal);
        var badView = Assert.Throws<ArgumentException>(() => new ReplayViews(Client, new ReplayViewOptions { StaleAfter = TimeSpan.Zero }));
        Assert.Contains("StaleAfter", badView.Message, StringComparison.Ordinal);
    }
}
