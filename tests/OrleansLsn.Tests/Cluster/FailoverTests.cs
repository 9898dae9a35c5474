using System.Diagnostics;
using Npgsql;
using Orleans.TestingHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// A cluster of four silos, two per region, whose silos a test kills; each test gets a fresh one. The collection runs
/// alone, after the parallel tests.
/// </summary>
public sealed class FailoverCluster : IAsyncDisposable
{
    public static readonly string[] Regions = [LsnTestCluster.EuWest, LsnTestCluster.EuWest, LsnTestCluster.UsEast, LsnTestCluster.UsEast];

    private readonly string _primary;

    private FailoverCluster(InProcessTestCluster cluster, string primary)
    {
        Cluster = cluster;
        _primary = primary;
    }

    public InProcessTestCluster Cluster { get; }

    public static async Task<FailoverCluster> StartAsync(PostgresFixture postgres, Action<IDictionary<string, string?>>? configure = null)
    {
        await ReplicationTables.PrepareAsync(postgres.PrimaryConnectionString, TestSlots.FailoverSlots);
        return new FailoverCluster(await LsnTestCluster.StartAsync(postgres, Regions, [TestSlots.FailoverAlwaysOn], configure), postgres.PrimaryConnectionString);
    }

    public string? RegionOf(string address) => LsnTestCluster.RegionOfAddress(Cluster, address, Regions);

    /// <summary>
    /// Kills the silo at <paramref name="address"/> the way a crash does: no graceful shutdown, no deactivation; then
    /// its process resources go (the host is disposed), as they would with the process.
    /// </summary>
    public async Task CrashAsync(string address)
    {
        InProcessSiloHandle silo = Cluster.Silos.Single(s => s.SiloAddress.ToParsableString() == address);
        await Cluster.KillSiloAsync(silo);
        await silo.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        await ReplicationTables.DropAsync(_primary, TestSlots.FailoverSlots);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FailoverCollection
{
    public const string Name = "Failover";
}

/// <summary>Silos die; the grains come back on surviving silos of the right region and nothing committed is lost.</summary>
[Collection(FailoverCollection.Name)]
public sealed class FailoverTests(PostgresFixture postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task KillingTheSiloHostingATracker_MovesItToTheRegionsOtherSilo_AndWaitsSucceedAgain()
    {
        await using FailoverCluster fixture = await FailoverCluster.StartAsync(postgres);
        IClusterClient client = fixture.Cluster.Client;
        ILsnTrackerGrain tracker = client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        LsnTrackerStatus before = await tracker.GetStatus();
        Assert.Equal(LsnTestCluster.EuWest, fixture.RegionOf(before.Silo));

        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        Lsn lsn = await OrleansLsn.Client.PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);

        var sw = Stopwatch.StartNew();
        await fixture.CrashAsync(before.Silo);
        (LsnWaitResult result, int attempts) = await RetryAsync(() => tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(5), Ct), TimeSpan.FromSeconds(60));
        TimeSpan recovered = sw.Elapsed;
        Assert.Equal(LsnWaitOutcome.Ready, result.Outcome);

        LsnTrackerStatus after = await tracker.GetStatus();
        Assert.NotEqual(before.Silo, after.Silo);
        Assert.Equal(LsnTestCluster.EuWest, fixture.RegionOf(after.Silo));
        TestContext.Current.SendDiagnosticMessage($"tracker eu-west moved from {before.Silo} to {after.Silo}; first Ready wait {recovered.TotalSeconds:0.0} s after the kill ({attempts} failed attempts)");
    }

    [Fact]
    public async Task KillingTheTrackersSilo_WithTenThousandViewWaitsPending_EachEndsReadyInTime_NoneHangs_NoneFalse()
    {
        const int Waits = 10_000;
        TimeSpan timeout = TimeSpan.FromSeconds(40);
        await using FailoverCluster fixture = await FailoverCluster.StartAsync(postgres);
        IClusterClient client = fixture.Cluster.Client;
        await using var views = new OrleansLsn.Client.ReplayViews(client, new OrleansLsn.Client.ReplayViewOptions { StaleAfter = TimeSpan.FromMilliseconds(500), CallTimeout = TimeSpan.FromSeconds(1) });
        OrleansLsn.Client.ReplayView view = views.Get(LsnTestCluster.EuWest);
        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        Lsn start = await OrleansLsn.Client.PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
        Assert.Equal(LsnWaitOutcome.Ready, (await view.WaitAsync(start, TimeSpan.FromSeconds(20), Ct)).Outcome);
        ILsnTrackerGrain tracker = client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        LsnTrackerStatus before = await tracker.GetStatus();

        // Targets 1 MiB past the primary's position (other WAL cannot get there meanwhile): none is replayed before the kill,
        // the 1.2 MB message written after it reaches them all.
        var sw = Stopwatch.StartNew();
        var waits = new Task<(LsnWaitResult Result, TimeSpan Elapsed, Lsn Target)>[Waits];
        for (int i = 0; i < Waits; i++)
        {
            Lsn target = start + (ulong)(1_048_576 + i);
            waits[i] = TimedAsync(view.WaitAsync(target, timeout, Ct), target);
        }

        Assert.Equal(Waits, view.PendingWaits);
        await fixture.CrashAsync(before.Silo);
        await using (var cmd = new NpgsqlCommand("select pg_logical_emit_message(false, 'view-failover', repeat('x', 1200000))", primary))
        {
            await cmd.ExecuteNonQueryAsync(Ct);
        }

        var results = await Task.WhenAll(waits).WaitAsync(timeout + TimeSpan.FromSeconds(20), Ct);
        TimeSpan allEnded = sw.Elapsed;
        LsnTrackerStatus after = await tracker.GetStatus();
        await using var replica = new NpgsqlConnection(postgres.StandbyConnectionString);
        await replica.OpenAsync(Ct);
        await using var replayCmd = new NpgsqlCommand("select pg_last_wal_replay_lsn()::text", replica);
        Lsn replayed = Lsn.Parse((string)(await replayCmd.ExecuteScalarAsync(Ct))!);

        int ready = results.Count(r => r.Result.IsReady);
        string figures = $"{ready} of {Waits} ready, last {results.Max(r => r.Elapsed).TotalSeconds:0.0} s after the kill's start (all ended {allEnded.TotalSeconds:0.0} s); " +
            $"tracker moved {before.Silo} -> {after.Silo}; view: {view.Pushes} pushes, {view.WatchCalls} watch calls, {view.PullCalls} pulls";
        TestContext.Current.SendDiagnosticMessage(figures);
        Assert.NotEqual(before.Silo, after.Silo);
        Assert.All(results, r => Assert.True(
            r.Result.IsReady ? r.Elapsed < timeout : r.Elapsed >= timeout,
            $"{r.Target}: {r.Result.Outcome} after {r.Elapsed.TotalMilliseconds:0} ms ({figures})"));
        Assert.All(results.Where(r => r.Result.IsReady), r => Assert.True(r.Target <= replayed, $"{r.Target} Ready but the replica is at {replayed}"));
        Assert.True(ready == Waits, $"the tracker came back well within the waits' {timeout.TotalSeconds} s, so all should be ready ({figures})");
        Assert.Equal(0, view.PendingWaits);

        async Task<(LsnWaitResult, TimeSpan, Lsn)> TimedAsync(ValueTask<LsnWaitResult> wait, Lsn target)
        {
            LsnWaitResult result = await wait;
            return (result, sw.Elapsed, target);
        }
    }

    [Fact]
    public async Task KillingTheSiloHostingAReplicationGrain_WhileChangesFlow_LosesNothing()
    {
        const int Rows = 400;
        string slot = TestSlots.Failover;
        string table = TestSlots.Table(slot);
        await using FailoverCluster fixture = await FailoverCluster.StartAsync(postgres);
        IClusterClient client = fixture.Cluster.Client;
        var observer = new RecordingChangeObserver();
        IChangeObserver reference = client.CreateObjectReference<IChangeObserver>(observer);
        IReplicationGrain grain = client.GetGrain<IReplicationGrain>(slot);
        await grain.Subscribe(reference);
        await Wait.UntilAsync(async () => (await grain.GetStatus()).State == ReplicationState.Streaming, TimeSpan.FromSeconds(30), () => "streaming");
        string hosting = (await grain.GetStatus()).Silo!;

        // Writes go on, one row per transaction, while the grain's silo dies.
        using var writerStop = new CancellationTokenSource();
        Task writer = Task.Run(async () =>
        {
            await using var conn = new NpgsqlConnection(postgres.PrimaryConnectionString);
            await conn.OpenAsync(Ct);
            for (int i = 1; i <= Rows; i++)
            {
                await using var cmd = new NpgsqlCommand($"insert into {table} values ($1, 'x')", conn);
                cmd.Parameters.AddWithValue((long)i);
                await cmd.ExecuteNonQueryAsync(Ct);
                if (i % 20 == 0)
                {
                    await Task.Delay(5, Ct);
                }
            }
        }, Ct);

        await Wait.UntilAsync(() => observer.Recorder.ConfirmedRows.Count() >= 50, TimeSpan.FromSeconds(30), () => "the first 50 rows before the kill");
        await fixture.CrashAsync(hosting);
        Lsn confirmedAtRestart = await ConfirmedFlushAsync(slot);

        // What a client does after a silo failure: subscribe again (idempotent) until it succeeds.
        await RetryAsync(async () => { await grain.Subscribe(reference); return true; }, TimeSpan.FromSeconds(60));
        await writer;
        await Wait.UntilAsync(
            () => observer.Recorder.ConfirmedRows.Select(r => r["id"]).Distinct().Count() == Rows,
            TimeSpan.FromSeconds(60),
            () => $"all {Rows} rows, have {observer.Recorder.ConfirmedRows.Select(r => r["id"]).Distinct().Count()} distinct");

        ReplicationStatus after = await grain.GetStatus();
        Assert.NotEqual(hosting, after.Silo);
        var seen = new HashSet<(Lsn, int)>();
        foreach ((ChangeBatch batch, _) in observer.Recorder.Confirmed)
        {
            if (!seen.Add((batch.CommitLsn, batch.Fragment)))
            {
                Assert.True(batch.CommitLsn >= confirmedAtRestart,
                    $"batch {batch.CommitLsn}/{batch.Fragment} was delivered again although the slot had confirmed up to {confirmedAtRestart}");
            }
        }

        TestContext.Current.SendDiagnosticMessage($"replication grain moved from {hosting} to {after.Silo}; {observer.Recorder.Confirmed.Count - seen.Count} duplicate batches, all past {confirmedAtRestart}");
        await grain.Unsubscribe(reference);
    }

    [Fact]
    public async Task KillingTheSiloHostingAReplicationGrain_WithTwoSubscribers_TheOneBackLaterMissesNothing()
    {
        const int Rows = 90;
        string slot = TestSlots.Failover;
        string table = TestSlots.Table(slot);
        // The new activation holds the slot for a subscriber of the old one for SubscriberTimeout: long enough here for
        // the first one back to get every row before the late one returns.
        await using FailoverCluster fixture = await FailoverCluster.StartAsync(postgres, s => s["OrleansLsn:Replication:SubscriberTimeout"] = "00:00:30");
        IClusterClient client = fixture.Cluster.Client;
        var first = new RecordingChangeObserver();
        var late = new RecordingChangeObserver();
        IChangeObserver firstRef = client.CreateObjectReference<IChangeObserver>(first);
        IChangeObserver lateRef = client.CreateObjectReference<IChangeObserver>(late);
        IReplicationGrain grain = client.GetGrain<IReplicationGrain>(slot);
        await grain.Subscribe(firstRef);
        await grain.Subscribe(lateRef);
        string hosting = (await grain.GetStatus()).Silo!;
        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        await InsertRowsAsync(primary, table, 1, 30);
        await Wait.UntilAsync(() => Ids(first).Count == 30 && Ids(late).Count == 30, TimeSpan.FromSeconds(30), () => "rows 1-30 at both subscribers");

        await fixture.CrashAsync(hosting);
        // One transaction each from here: the slot is held for the late subscriber, and the test cluster's pump pauses
        // (backpressure) at 16 unconfirmed batches, as it would for a slow subscriber.
        await InsertRangeAsync(primary, table, 31, 60);

        // The first subscriber renews at once (on the new activation); the other is late.
        await RetryAsync(async () => { await grain.Subscribe(firstRef); return true; }, TimeSpan.FromSeconds(60));
        await InsertRangeAsync(primary, table, 61, Rows);
        await Wait.UntilAsync(() => Ids(first).Count == Rows, TimeSpan.FromSeconds(60), () => $"all {Rows} rows at the first subscriber, have {Ids(first).Count}");
        ReplicationStatus held = await grain.GetStatus();
        Assert.NotEqual(hosting, held.Silo);
        Assert.True(held.AwaitedSubscribers == 1, $"awaited {held.AwaitedSubscribers}; remembered: {await RememberedAsync(slot)}; status {held}");

        await grain.Subscribe(lateRef);
        await Wait.UntilAsync(() => Ids(late).Count == Rows, TimeSpan.FromSeconds(60), () => $"all {Rows} rows at the subscriber back later, have {Ids(late).Count}");
        Assert.Equal(0, (await grain.GetStatus()).AwaitedSubscribers);
        await grain.Unsubscribe(firstRef);
        await grain.Unsubscribe(lateRef);
    }

    [Fact]
    public async Task AlwaysOnSlot_ComesBackByItself_OnASurvivingSilo()
    {
        string slot = TestSlots.FailoverAlwaysOn;
        await using FailoverCluster fixture = await FailoverCluster.StartAsync(postgres);
        IReplicationGrain grain = fixture.Cluster.Client.GetGrain<IReplicationGrain>(slot);
        await Wait.UntilAsync(async () => await ActivePidAsync(slot) is not null, TimeSpan.FromSeconds(30), () => "the always-on slot streaming without any subscriber");
        string hosting = (await grain.GetStatus()).Silo!;
        await fixture.CrashAsync(hosting);

        // Nobody calls it: the surviving silos' keepers bring it back.
        await Wait.UntilAsync(async () => await ActivePidAsync(slot) is null, TimeSpan.FromSeconds(30), () => "the dead silo's walsender gone");
        await Wait.UntilAsync(async () => await ActivePidAsync(slot) is not null, TimeSpan.FromSeconds(60), () => "the always-on slot streaming again");
        Assert.NotEqual(hosting, (await grain.GetStatus()).Silo);
    }

    private async Task<string> RememberedAsync(string slot)
    {
        await using var conn = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("select string_agg(subscriber, ', ') from orleanslsn_replication_subscribers where slot_name = $1", conn);
        cmd.Parameters.AddWithValue(slot);
        return await cmd.ExecuteScalarAsync(Ct) as string ?? "none";
    }

    private static HashSet<string> Ids(RecordingChangeObserver observer) =>
        [.. observer.Recorder.ConfirmedRows.Where(r => r.Kind == ChangeKind.Insert).Select(r => r["id"]!)];

    private static async Task InsertRangeAsync(NpgsqlConnection primary, string table, int from, int to)
    {
        await using var cmd = new NpgsqlCommand($"insert into {table} select g, 'x' from generate_series($1::bigint, $2::bigint) g", primary);
        cmd.Parameters.AddWithValue((long)from);
        cmd.Parameters.AddWithValue((long)to);
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private static async Task InsertRowsAsync(NpgsqlConnection primary, string table, int from, int to)
    {
        for (int i = from; i <= to; i++)
        {
            await using var cmd = new NpgsqlCommand($"insert into {table} values ($1, 'x')", primary);
            cmd.Parameters.AddWithValue((long)i);
            await cmd.ExecuteNonQueryAsync(Ct);
        }
    }

    private async Task<int?> ActivePidAsync(string slot)
    {
        await using var conn = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("select active_pid from pg_replication_slots where slot_name = $1", conn);
        cmd.Parameters.AddWithValue(slot);
        return await cmd.ExecuteScalarAsync(Ct) is int pid ? pid : null;
    }

    private async Task<Lsn> ConfirmedFlushAsync(string slot)
    {
        await using var conn = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand("select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", conn);
        cmd.Parameters.AddWithValue(slot);
        return Lsn.Parse((string)(await cmd.ExecuteScalarAsync(Ct))!);
    }

    private static async Task<(T Result, int FailedAttempts)> RetryAsync<T>(Func<Task<T>> call, TimeSpan deadline)
    {
        var sw = Stopwatch.StartNew();
        int failures = 0;
        while (true)
        {
            try
            {
                return (await call().WaitAsync(TimeSpan.FromSeconds(10), Ct), failures);
            }
            catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException or OrleansException && sw.Elapsed < deadline)
            {
                failures++;
                await Task.Delay(100, Ct);
            }
        }
    }
}
