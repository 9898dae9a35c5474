using System.Diagnostics;
using Npgsql;
using OrleansLsn.Silo.Local;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using OrleansLsn.Client;
using Xunit;

namespace OrleansLsn.Tests.Processes;

/// <summary>
/// Silo processes of <c>src/Silo</c> over real TCP with mutual TLS and PostgreSQL membership: they form one cluster,
/// serve both regions, and survive <c>kill -9</c> of the silo hosting a tracker or a replication grain.
/// </summary>
[Collection(DeploymentCollection.Name)]
public sealed class SiloProcessTests(DeploymentFixture fixture)
{
    private const string EuWest = "eu-west";
    private const string UsEast = "us-east";
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private LocalDeployment Deployment => fixture.Deployment;

    [Fact]
    public async Task Silos_FormOneClusterThroughPostgresMembership_AndServeReadYourWritesInBothRegions()
    {
        await using NpgsqlConnection primary = await OpenAsync(Deployment.Postgres.Primary.ConnectionString);
        long active = await ScalarAsync<long>(primary, "select count(*) from orleanslsn_membership_silo where status = 3");
        Assert.True(active >= 4, $"{active} active silos in the membership table");
        await ExecAsync(primary, "create table if not exists proc_ryw(id bigint primary key)");
        foreach (string region in new[] { EuWest, UsEast })
        {
            await using NpgsqlConnection replica = await OpenAsync(Deployment.ReplicaOf(region));
            ILsnTrackerGrain tracker = fixture.Client.GetGrain<ILsnTrackerGrain>(region);
            LsnTrackerStatus status = await tracker.GetStatus();
            Assert.Equal(region, Deployment.SiloAt(status.Silo)?.Region);
            for (int i = 0; i < 10; i++)
            {
                long id = (region == EuWest ? 0 : 1000) + i;
                await ExecAsync(primary, "insert into proc_ryw values ($1)", id);
                Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
                LsnWaitResult result = await tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(5), Ct);
                Assert.Equal(LsnWaitOutcome.Ready, result.Outcome);
                Assert.True(await ScalarAsync<bool>(replica, "select exists(select 1 from proc_ryw where id = $1)", id), $"row {id} missing on {region}");
            }
        }
    }

    [Fact]
    public async Task KillingTheSiloHostingATracker_TheRegionsOtherSiloServesIt_AndNoCallHangsPastItsTimeout()
    {
        await fixture.RestoreAsync(EuWest);
        ILsnTrackerGrain tracker = fixture.Client.GetGrain<ILsnTrackerGrain>(EuWest);
        LsnTrackerStatus before = await tracker.GetStatus();
        SiloProcess victim = Deployment.SiloAt(before.Silo) ?? throw new InvalidOperationException($"no process for {before.Silo}");
        await using NpgsqlConnection primary = await OpenAsync(Deployment.Postgres.Primary.ConnectionString);
        Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);

        var sw = Stopwatch.StartNew();
        victim.Kill();
        TimeSpan longestCall = TimeSpan.Zero;
        int failures = 0;
        LsnWaitResult? result = null;
        while (result is null)
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"no Ready wait within 60 s of the kill ({failures} failed calls)");
            var call = Stopwatch.StartNew();
            // As a careful caller (and the client library) does: the call's own token ends it shortly after the wait's
            // timeout, even if it went to the silo that just died (Orleans would only time it out after 65 s).
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(4));
            try
            {
                result = await tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(2), deadline.Token);
            }
            catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException or OrleansException
                || (e is OperationCanceledException && !Ct.IsCancellationRequested))
            {
                failures++;
            }

            longestCall = call.Elapsed > longestCall ? call.Elapsed : longestCall;
        }

        TimeSpan recovered = sw.Elapsed;
        Assert.Equal(LsnWaitOutcome.Ready, result.Outcome);
        LsnTrackerStatus after = await tracker.GetStatus();
        Assert.NotEqual(before.Silo, after.Silo);
        Assert.Equal(EuWest, Deployment.SiloAt(after.Silo)?.Region);
        Assert.True(longestCall < TimeSpan.FromSeconds(6), $"a call took {longestCall}, past its 4 s deadline");
        TestContext.Current.SendDiagnosticMessage($"kill -9 of {victim.Name}: tracker eu-west Ready again from {Deployment.SiloAt(after.Silo)!.Name} after {recovered.TotalSeconds:0.0} s; {failures} failed calls, longest {longestCall.TotalSeconds:0.0} s");
        await fixture.RestoreAsync(EuWest);
    }

    [Fact]
    public async Task KillNineOfTheTrackersSilo_WithTenThousandViewWaitsPending_EachEndsReadyInTimeOrTimedOutAtIt()
    {
        const int Waits = 10_000;
        TimeSpan timeout = TimeSpan.FromSeconds(30);
        await fixture.RestoreAsync(EuWest);
        await using var views = new ReplayViews(fixture.Client, new ReplayViewOptions { StaleAfter = TimeSpan.FromMilliseconds(500), CallTimeout = TimeSpan.FromSeconds(1) });
        ReplayView view = views.Get(EuWest);
        await using NpgsqlConnection primary = await OpenAsync(Deployment.Postgres.Primary.ConnectionString);
        Lsn start = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
        Assert.Equal(LsnWaitOutcome.Ready, (await view.WaitAsync(start, TimeSpan.FromSeconds(20), Ct)).Outcome);
        ILsnTrackerGrain tracker = fixture.Client.GetGrain<ILsnTrackerGrain>(EuWest);
        LsnTrackerStatus before = await tracker.GetStatus();
        SiloProcess victim = Deployment.SiloAt(before.Silo) ?? throw new InvalidOperationException($"no process for {before.Silo}");

        // Targets 1 MiB past the primary's position (other WAL cannot get there meanwhile): none is replayed before the kill,
        // the 1.2 MB message written after it reaches them all.
        var sw = Stopwatch.StartNew();
        var waits = new Task<(LsnWaitResult Result, TimeSpan Elapsed, Lsn Target)>[Waits];
        for (int i = 0; i < Waits; i++)
        {
            Lsn target = start + (ulong)(1_048_576 + i);
            waits[i] = TimedAsync(view.WaitAsync(target, timeout, Ct), target);
        }

        victim.Kill();
        await ExecAsync(primary, "select pg_logical_emit_message(false, 'view-kill', repeat('x', 1200000))");
        var results = await Task.WhenAll(waits).WaitAsync(timeout + TimeSpan.FromSeconds(20), Ct);
        await using NpgsqlConnection replica = await OpenAsync(Deployment.ReplicaOf(EuWest));
        Lsn replayed = Lsn.Parse(await ScalarAsync<string>(replica, "select pg_last_wal_replay_lsn()::text"));
        int ready = results.Count(r => r.Result.IsReady);
        string figures = $"kill -9 of {victim.Name} with {Waits} view waits pending: {ready} ready, the last after {results.Max(r => r.Elapsed).TotalSeconds:0.0} s; " +
            $"view: {view.Pushes} pushes, {view.WatchCalls} watch calls, {view.PullCalls} pulls";
        TestContext.Current.SendDiagnosticMessage(figures);
        Assert.All(results, r => Assert.True(
            r.Result.IsReady ? r.Elapsed < timeout : r.Elapsed >= timeout,
            $"{r.Target}: {r.Result.Outcome} after {r.Elapsed.TotalMilliseconds:0} ms ({figures})"));
        Assert.All(results.Where(r => r.Result.IsReady), r => Assert.True(r.Target <= replayed, $"{r.Target} Ready but the replica is at {replayed}"));
        Assert.True(ready == Waits, $"the region's other silo took over well within {timeout.TotalSeconds} s, so every wait should be ready ({figures})");
        Assert.Equal(0, view.PendingWaits);
        await fixture.RestoreAsync(EuWest);

        async Task<(LsnWaitResult, TimeSpan, Lsn)> TimedAsync(ValueTask<LsnWaitResult> wait, Lsn target)
        {
            LsnWaitResult result = await wait;
            return (result, sw.Elapsed, target);
        }
    }

    [Fact]
    public async Task KillingTheSiloHostingTheReplicationGrain_WhileChangesFlow_EveryCommittedChangeArrives()
    {
        const int Rows = 300;
        await fixture.RestoreAsync(EuWest);
        await fixture.RestoreAsync(UsEast);
        var observer = new RecordingChangeObserver();
        IChangeObserver reference = fixture.Client.CreateObjectReference<IChangeObserver>(observer);
        IReplicationGrain grain = fixture.Client.GetGrain<IReplicationGrain>(DeploymentFixture.Slot);
        await grain.Subscribe(reference);
        await Wait.UntilAsync(async () => (await grain.GetStatus()).State == ReplicationState.Streaming, TimeSpan.FromSeconds(30), () => "streaming");
        string hosting = (await grain.GetStatus()).Silo!;
        SiloProcess victim = Deployment.SiloAt(hosting)!;
        await using NpgsqlConnection primary = await OpenAsync(Deployment.Postgres.Primary.ConnectionString);
        await ExecAsync(primary, $"truncate {DeploymentFixture.Table}");

        Task writer = Task.Run(async () =>
        {
            await using NpgsqlConnection conn = await OpenAsync(Deployment.Postgres.Primary.ConnectionString);
            for (int i = 1; i <= Rows; i++)
            {
                await ExecAsync(conn, $"insert into {DeploymentFixture.Table} values ($1, 'x')", (long)i);
                if (i % 10 == 0)
                {
                    await Task.Delay(10, Ct);
                }
            }
        }, Ct);

        await Wait.UntilAsync(() => InsertedIds(observer).Count >= 30, TimeSpan.FromSeconds(30), () => "30 rows before the kill");
        victim.Kill();
        var sw = Stopwatch.StartNew();
        // The killed process's walsender goes with its socket; what the slot had confirmed then is the restart point.
        await Wait.UntilAsync(async () => await ScalarAsync<bool>(primary, "select not active from pg_replication_slots where slot_name = $1", DeploymentFixture.Slot),
            TimeSpan.FromSeconds(30), () => "the dead silo's walsender gone");
        Lsn restartPoint = Lsn.Parse(await ScalarAsync<string>(primary, "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", DeploymentFixture.Slot));

        // What a client does after a failure it cannot see: subscribe again (idempotent) until that works.
        while (true)
        {
            try
            {
                await grain.Subscribe(reference).WaitAsync(CallTimeout, Ct);
                if ((await grain.GetStatus().WaitAsync(CallTimeout, Ct)).Silo != hosting)
                {
                    break;
                }
            }
            catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException or OrleansException)
            {
            }

            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(90), "the replication grain did not come back within 90 s");
            await Task.Delay(200, Ct);
        }

        await writer;
        await Wait.UntilAsync(() => InsertedIds(observer).Count == Rows, TimeSpan.FromSeconds(60), () => $"all {Rows} rows; have {InsertedIds(observer).Count}");
        ReplicationStatus status = await grain.GetStatus();
        Assert.NotEqual(hosting, status.Silo);
        var seen = new HashSet<(Lsn, int)>();
        int duplicates = 0;
        foreach ((ChangeBatch batch, _) in observer.Recorder.Confirmed)
        {
            if (!seen.Add((batch.CommitLsn, batch.Fragment)))
            {
                duplicates++;
                Assert.True(batch.CommitLsn >= restartPoint, $"batch {batch.CommitLsn} delivered again although the slot had confirmed {restartPoint}");
            }
        }

        TestContext.Current.SendDiagnosticMessage($"kill -9 of {victim.Name} (replication grain): resumed on {Deployment.SiloAt(status.Silo!)?.Name} after {sw.Elapsed.TotalSeconds:0.0} s; {duplicates} duplicate batches, all past {restartPoint}");
        await grain.Unsubscribe(reference);
        fixture.Client.DeleteObjectReference<IChangeObserver>(reference);
        await fixture.RestoreAsync(victim.Region);
    }

    [Fact]
    public async Task StoppingEverySiloOfARegion_FailsItsCallsFast_AndAStartedSiloServesItAgain()
    {
        await fixture.RestoreAsync(UsEast);
        IReadOnlyList<SiloProcess> silos = fixture.LiveSilos(UsEast);
        await Task.WhenAll(silos.Select(s => s.StopAsync(TimeSpan.FromSeconds(30))));

        // A graceful stop marks the silo Dead in the membership table at once.
        await using NpgsqlConnection primary = await OpenAsync(Deployment.Postgres.Primary.ConnectionString);
        foreach (SiloProcess silo in silos)
        {
            Assert.Equal(6, await ScalarAsync<int>(primary, "select status from orleanslsn_membership_silo where port = $1 order by generation desc limit 1", silo.SiloPort));
        }

        ILsnTrackerGrain tracker = fixture.Client.GetGrain<ILsnTrackerGrain>(UsEast);
        await Wait.UntilAsync(
            async () =>
            {
                var sw = Stopwatch.StartNew();
                try
                {
                    await tracker.GetStatus().WaitAsync(CallTimeout, Ct);
                    return false;
                }
                catch (RegionUnavailableException e)
                {
                    Assert.Contains("'us-east'", e.Message, StringComparison.Ordinal);
                    Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"the region error took {sw.Elapsed}");
                    return true;
                }
                catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(60),
            () => "RegionUnavailableException for us-east once its silos are gone");

        SiloProcess started = Deployment.StartSilo(UsEast);
        await started.WaitHealthyAsync(TimeSpan.FromSeconds(60), Ct);
        await Wait.UntilAsync(
            async () =>
            {
                try
                {
                    LsnTrackerStatus status = await tracker.GetStatus().WaitAsync(CallTimeout, Ct);
                    return Deployment.SiloAt(status.Silo) == started;
                }
                catch (Exception e) when (e is RegionUnavailableException or SiloUnavailableException or OrleansMessageRejectionException or TimeoutException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(60),
            () => "tracker us-east served by the new silo");
        await fixture.RestoreAsync(UsEast);
    }

    [Fact]
    public async Task ASiloWhoseHttpPortIsTaken_ExitsWithCode2NamingTheKeyAndPort_WithoutJoiningTheCluster()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Any, 0);
        taken.Start();
        int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        string portText = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        SiloProcess silo = Deployment.StartSilo(EuWest, new Dictionary<string, string> { ["OrleansLsn:HttpPort"] = portText });
        int exitCode = await silo.WaitForExitAsync(TimeSpan.FromSeconds(60), Ct);
        string log = silo.ReadLogTail(60);
        Assert.True(exitCode == 2, $"exit code {exitCode}; log:\n{log}");
        Assert.Contains($"OrleansLsn:HttpPort: port {port} is already in use", log, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", log, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", log, StringComparison.Ordinal);

        await using NpgsqlConnection membership = await OpenAsync(Deployment.MembershipConnectionString);
        Assert.Equal(0L, await ScalarAsync<long>(membership, "select count(*) from orleanslsn_membership_silo where port = $1", silo.SiloPort));
    }

    private static HashSet<string> InsertedIds(RecordingChangeObserver observer) =>
        [.. observer.Recorder.ConfirmedRows.Where(r => r.Kind == ChangeKind.Insert).Select(r => r["id"]!)];

    private static async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        return conn;
    }

    private static async Task ExecAsync(NpgsqlConnection conn, string sql, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (object arg in args)
        {
            cmd.Parameters.AddWithValue(arg);
        }

        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection conn, string sql, params object[] args)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        foreach (object arg in args)
        {
            cmd.Parameters.AddWithValue(arg);
        }

        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }
}
