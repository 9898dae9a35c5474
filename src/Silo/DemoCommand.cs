using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>demo</c>: the whole system on this machine. A local primary and one hot standby per region, four silo processes
/// of this executable (two per region) forming one cluster through PostgreSQL membership with mutual TLS, and a client
/// through the client library that shows read-your-writes in each region, a timeout while a region's replay is paused,
/// observer pushes, change streaming with a pause and a resume, and <c>kill -9</c> of the silo hosting a tracker.
/// Everything is stopped and removed at the end, also when interrupted.
/// </summary>
internal static class DemoCommand
{
    private const string EuWest = "eu-west";
    private const string UsEast = "us-east";

    internal static Command Create()
    {
        var writes = new Option<int>("--writes") { Description = "Write/wait/read rounds per region.", DefaultValueFactory = _ => 10 };
        var keepFolder = new Option<bool>("--keep-folder")
        {
            Description = "Keep the deployment's folder (silo logs, certificates and keys, the files with connection strings and this run's " +
                "PostgreSQL password) instead of removing it, and print its path; you delete it.",
        };
        Option<int> replayDelay = ClusterCommand.ReplayDelayOption();
        var command = new Command(
            "demo",
            "The whole system on this machine: local PostgreSQL (primary, standbys eu-west and us-east), four silo processes over PostgreSQL membership " +
            "with TLS, and a client showing read-your-writes per region, a timeout, observer pushes, change streaming with pause/resume, and kill -9 failover.")
        {
            writes,
            keepFolder,
            replayDelay,
        };
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            int rounds = result.GetValue(writes);
            if (rounds < 1 || rounds > 10_000)
            {
                Console.Error.WriteLine("--writes must be between 1 and 10000.");
                return 2;
            }

            int delay = result.GetValue(replayDelay);
            if (ClusterCommand.CheckReplayDelay(delay) is { } problem)
            {
                Console.Error.WriteLine(problem);
                return 2;
            }

            try
            {
                return await RunAsync(rounds, result.GetValue(keepFolder), delay, cancellationToken);
            }
            catch (LocalPostgresException ex)
            {
                Console.Error.WriteLine($"Could not start the local PostgreSQL: {ex.Message}");
                return 3;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                Console.WriteLine("Interrupted; everything was stopped and removed.");
                return 130;
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(int rounds, bool keepFolder, int replayDelayMs, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        Phase("1. The cluster");
        LocalDeploymentOptions options = ClusterCommand.DemoOptions(replayDelayMs);
        options.KeepFolder = keepFolder;
        await using LocalDeployment deployment = await LocalDeployment.StartAsync(options, Console.WriteLine, cancellationToken);
        if (keepFolder)
        {
            // Printed first, so that even an interrupted run says where its folder is.
            Console.WriteLine($"  the deployment's folder is kept (--keep-folder): {deployment.Folder}");
        }

        await using var primary = NpgsqlDataSource.Create(deployment.Postgres.Primary.ConnectionString);
        await using var euWest = NpgsqlDataSource.Create(deployment.ReplicaOf(EuWest));
        await using var usEast = NpgsqlDataSource.Create(deployment.ReplicaOf(UsEast));

        Console.WriteLine("connecting a client through the client library (gateways from the membership table, TLS with its own certificate)...");
        var sw = Stopwatch.StartNew();
        // The demo tells its own story; the client's and Orleans' warnings (expected around the kill) would drown it.
        await using OrleansLsnClient client = await LocalClient.ConnectAsync(deployment.ClientSettings, cancellationToken, Microsoft.Extensions.Logging.LogLevel.Error);
        Console.WriteLine($"  connected in {sw.Elapsed.TotalSeconds:0.0} s");

        var replicas = new Dictionary<string, NpgsqlDataSource> { [EuWest] = euWest, [UsEast] = usEast };
        ReadYourWritesSession session = client.CreateSession(primary, replicas, new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromSeconds(5) });
        bool ok = true;

        Phase("2. Read-your-writes in each region");
        var stale = new Dictionary<string, int>(StringComparer.Ordinal);
        int earlyInDelayedRegion = 0;
        foreach (string region in new[] { EuWest, UsEast })
        {
            int delay = region == ClusterCommand.DelayedRegion ? replayDelayMs : 0;
            (bool visible, int missed, int early) = await ReadYourWritesAsync(client, session, replicas[region], region, rounds, delay, deployment, cancellationToken);
            ok &= visible;
            stale[region] = missed;
            earlyInDelayedRegion += region == ClusterCommand.DelayedRegion ? early : 0;
        }

        ok &= ExplainLag(stale, earlyInDelayedRegion, rounds, replayDelayMs);

        Phase("3. A wait that times out while us-east's replay is paused");
        ok &= await PausedReplayAsync(client, primary, replicas, deployment, cancellationToken);

        Phase("4. Observer pushes");
        var pushes = new PushCounter();
        await using LsnSubscription replay = await client.SubscribeToReplayAsync(EuWest, pushes, cancellationToken: cancellationToken);
        long before = pushes.Count;
        long id = await session.ExecuteWriteAsync(c => InsertAsync(c, "pushed", EuWest, cancellationToken), cancellationToken);
        Lsn written = session.LastWrite!.Value;
        bool pushed = await WaitAsync(() => pushes.Latest >= written, TimeSpan.FromSeconds(10), cancellationToken);
        Console.WriteLine($"  subscribed to eu-west's replay; wrote row {id} at {written}: {pushes.Count - before} push(es), latest {pushes.Latest} ({(pushed ? "reached the write" : "did NOT reach the write")})");
        ok &= pushed;

        Phase("5. Change streaming through the replication grain");
        ok &= await StreamAsync(client, primary, cancellationToken);

        Phase("6. kill -9 of the silo hosting eu-west's tracker");
        ok &= await FailoverAsync(client, session, deployment, pushes, cancellationToken);
        Console.WriteLine($"  the subscription renewed itself {replay.Resubscribed} time(s) so far; {replay.FailedRenewals} renewal(s) failed around the kill and were retried");

        Phase("7. Shutting down");
        Console.WriteLine("  stopping the client, the silos (SIGTERM: graceful, their membership rows go to Dead) and PostgreSQL...");
        await replay.DisposeAsync();
        await client.DisposeAsync();
        await deployment.DisposeAsync();
        Console.WriteLine($"  done; {(keepFolder ? $"every folder removed but {deployment.Folder} (kept)" : "every folder removed")}. The demo took {total.Elapsed.TotalSeconds:0} s and {(ok ? "everything behaved as expected" : "SOMETHING DID NOT behave as expected (see above)")}.");
        return ok ? 0 : 1;
    }

    /// <summary>
    /// Says why the regions differ. Fails only on proof that the replay delay did not work: a read in the delayed region,
    /// done within half the delay of its commit, that saw the write. (On a loaded machine every read right after a commit
    /// may come later than the delay; then no read misses and that is said, not failed.)
    /// </summary>
    private static bool ExplainLag(Dictionary<string, int> stale, int early, int rounds, int replayDelayMs)
    {
        string delayed = ClusterCommand.DelayedRegion;
        string other = delayed == EuWest ? UsEast : EuWest;
        Console.WriteLine();
        if (replayDelayMs == 0)
        {
            Console.WriteLine($"  no replay delay (--replay-delay 0): on loopback both standbys replay a commit in about a millisecond, so a read right after");
            Console.WriteLine($"  the commit mostly sees the write already ({delayed} missed {stale[delayed]} of {rounds}, {other} {stale[other]} of {rounds}); across regions it would not.");
            return true;
        }

        Console.WriteLine($"  Why the regions differ: {delayed}'s standby applies each commit {replayDelayMs} ms after the primary (recovery_min_apply_delay, as a replica");
        Console.WriteLine($"  across a WAN lags), so a read there right after the commit missed the write {stale[delayed]} of {rounds} times; {other}'s standby has no delay");
        Console.WriteLine($"  and replays a commit in about a millisecond on loopback (missed {stale[other]} of {rounds}). After the wait on the region's tracker, every read saw its write.");
        if (early > 0)
        {
            Console.WriteLine($"  UNEXPECTED: {early} read(s) in {delayed} saw the write within {replayDelayMs / 2} ms of the commit: its {replayDelayMs} ms replay delay did not take effect.");
            return false;
        }

        if (stale[delayed] == 0)
        {
            Console.WriteLine($"  (No read right after a commit came within {replayDelayMs} ms of it here: the machine is busy; the column in parentheses shows when each was done.)");
        }

        return true;
    }

    /// <summary>
    /// Rounds of write, read right after the commit, wait, read. Returns whether every read after the wait saw its write,
    /// how many reads right after the commit missed it, and how many saw it although they were done within half of
    /// <paramref name="replayDelayMs"/> (impossible where the region's replay is delayed by that much).
    /// </summary>
    private static async Task<(bool AllVisible, int Stale, int Early)> ReadYourWritesAsync(
        OrleansLsnClient client, ReadYourWritesSession session, NpgsqlDataSource replica, string region, int rounds, int replayDelayMs, LocalDeployment deployment, CancellationToken cancellationToken)
    {
        ILsnTrackerGrain tracker = client.Cluster.GetGrain<ILsnTrackerGrain>(region);
        LsnTrackerStatus status = await tracker.GetStatus();
        for (int i = 0; i < 100 && status.LastReplay is null; i++)
        {
            // The first call activated the tracker; its first poll of the replica follows within milliseconds.
            await Task.Delay(20, cancellationToken);
            status = await tracker.GetStatus();
        }

        Console.WriteLine($"region {region}: its tracker runs on {deployment.SiloAt(status.Silo)?.Name} ({status.Silo}), replica replay at {status.LastReplay}");
        Console.WriteLine("    #  row   read right after commit (done ms after it)   wait on the tracker   read after the wait");
        int stale = 0;
        int early = 0;
        int visible = 0;
        var waits = new List<double>();
        for (int i = 1; i <= rounds; i++)
        {
            long id = await session.ExecuteWriteAsync(c => InsertAsync(c, $"write {i}", region, cancellationToken), cancellationToken);
            // The primary stamped the commit before ExecuteWriteAsync returned: a read done within half the replay delay
            // of that return must miss the write where the delay works.
            var sinceCommit = Stopwatch.StartNew();
            bool now = await IsVisibleAsync(replica, id, cancellationToken);
            double readMs = sinceCommit.Elapsed.TotalMilliseconds;
            stale += now ? 0 : 1;
            if (now && readMs < replayDelayMs / 2.0)
            {
                early++;
            }

            var sw = Stopwatch.StartNew();
            await using NpgsqlConnection read = await session.OpenReadConnectionAsync(region, cancellationToken);
            double waited = sw.Elapsed.TotalMilliseconds;
            waits.Add(waited);
            bool after = await IsVisibleAsync(read, id, cancellationToken);
            visible += after ? 1 : 0;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {i,3}  {id,-4}  {(now ? "visible" : "STALE (missing)"),-16} ({readMs,6:0.0} ms)                {waited,8:0.00} ms           {(after ? "visible" : "MISSING")}"));
        }

        waits.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {region}: a read right after commit missed the write {stale} of {rounds} time(s); after the wait it was visible {visible} of {rounds}; wait p50 {waits[waits.Count / 2]:0.00} ms, max {waits[^1]:0.00} ms"));
        return (visible == rounds, stale, early);
    }

    private static async Task<bool> PausedReplayAsync(
        OrleansLsnClient client, NpgsqlDataSource primary, Dictionary<string, NpgsqlDataSource> replicas, LocalDeployment deployment, CancellationToken cancellationToken)
    {
        await deployment.Postgres.PauseReplayAsync(UsEast, cancellationToken);
        try
        {
            ReadYourWritesSession strict = client.CreateSession(primary, replicas, new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromMilliseconds(500) });
            long id = await strict.ExecuteWriteAsync(c => InsertAsync(c, "while paused", UsEast, cancellationToken), cancellationToken);
            var sw = Stopwatch.StartNew();
            bool threw = false;
            try
            {
                await using NpgsqlConnection _ = await strict.OpenReadConnectionAsync(UsEast, cancellationToken);
            }
            catch (ReadYourWritesTimeoutException e)
            {
                threw = true;
                Console.WriteLine($"  policy Throw, 500 ms: after {sw.Elapsed.TotalMilliseconds:0} ms: {e.Message}");
            }

            ReadYourWritesSession fallback = client.CreateSession(primary, replicas, new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromMilliseconds(500), OnTimeout = ReadYourWritesTimeoutPolicy.UsePrimary });
            fallback.RecordWrite(strict.LastWrite!.Value);
            sw.Restart();
            await using NpgsqlConnection served = await fallback.OpenReadConnectionAsync(UsEast, cancellationToken);
            bool onPrimary = !await ScalarAsync<bool>(served, "select pg_is_in_recovery()", cancellationToken);
            bool there = await IsVisibleAsync(served, id, cancellationToken);
            Console.WriteLine($"  policy UsePrimary, 500 ms: after {sw.Elapsed.TotalMilliseconds:0} ms got a {(onPrimary ? "primary" : "REPLICA")} connection; the row is {(there ? "there" : "MISSING")} (never a stale read)");
            return threw && onPrimary && there;
        }
        finally
        {
            await deployment.Postgres.ResumeReplayAsync(UsEast, CancellationToken.None);
            Console.WriteLine("  resumed us-east's replay");
        }
    }

    private static async Task<bool> StreamAsync(OrleansLsnClient client, NpgsqlDataSource primary, CancellationToken cancellationToken)
    {
        var printer = new PrintingObserver();
        await using ChangeSubscription subscription = await client.SubscribeToChangesAsync(ClusterCommand.DemoSlot, printer, cancellationToken: cancellationToken);
        IReplicationGrain grain = client.Cluster.GetGrain<IReplicationGrain>(ClusterCommand.DemoSlot);
        if (!await WaitAsync(async () => await grain.GetStatus() is { State: ReplicationState.Streaming, ServerPid: not null }, TimeSpan.FromSeconds(30), cancellationToken))
        {
            Console.WriteLine($"  the grain did not start streaming: {(await grain.GetStatus()).LastError}");
            return false;
        }

        ReplicationStatus status = await grain.GetStatus();
        Console.WriteLine($"  slot {ClusterCommand.DemoSlot} streams on silo {status.Silo} from walsender PID {status.ServerPid}; status updates every {status.StatusInterval.TotalMilliseconds:0} ms");
        long start = printer.Rows;
        await InsertManyAsync(primary, 3, cancellationToken);
        await WaitAsync(() => printer.Rows >= start + 3, TimeSpan.FromSeconds(30), cancellationToken);
        await grain.Pause();
        Console.WriteLine("  paused through the grain; writing 2000 rows in one transaction while the pump reads nothing...");
        await InsertManyAsync(primary, 2000, cancellationToken);
        await WaitAsync(async () => (await grain.GetStatus()).LagBytes > 0, TimeSpan.FromSeconds(30), cancellationToken);
        status = await grain.GetStatus();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  while paused: {printer.Rows - start} rows delivered, lag {status.LagBytes / 1024.0:0.0} KiB, pause reasons {status.PauseReasons}, same walsender PID {status.ServerPid}"));
        var resume = Stopwatch.StartNew();
        await grain.Resume();
        bool all = await WaitAsync(() => printer.Rows >= start + 2003, TimeSpan.FromSeconds(30), cancellationToken);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  resumed: {printer.Rows - start} rows delivered {resume.Elapsed.TotalMilliseconds:0} ms after the resume"));
        await WaitAsync(async () => await grain.GetStatus() is { BacklogBatches: 0 } s && s.FlushedLsn >= printer.LastEnd, TimeSpan.FromSeconds(30), cancellationToken);
        status = await grain.GetStatus();
        Console.WriteLine($"  acknowledged to PostgreSQL up to {status.FlushedLsn}; reconnects {status.ReconnectCount}");
        return all && status.ReconnectCount == 0;
    }

    private static async Task<bool> FailoverAsync(OrleansLsnClient client, ReadYourWritesSession session, LocalDeployment deployment, PushCounter pushes, CancellationToken cancellationToken)
    {
        ILsnTrackerGrain tracker = client.Cluster.GetGrain<ILsnTrackerGrain>(EuWest);
        LsnTrackerStatus before = await tracker.GetStatus();
        SiloProcess victim = deployment.SiloAt(before.Silo) ?? throw new InvalidOperationException($"no process hosts {before.Silo}");
        Console.WriteLine($"  the tracker runs on {victim.Name} (pid {victim.Pid}); kill -9...");
        var sw = Stopwatch.StartNew();
        victim.Kill();
        long id = await session.ExecuteWriteAsync(c => InsertAsync(c, "after the kill", EuWest, cancellationToken), cancellationToken);
        Lsn written = session.LastWrite!.Value;
        Console.WriteLine($"  waiting for a read-your-writes read in eu-west (the session retries within its deadline, then we retry the read)...");
        bool served = false;
        while (!served && sw.Elapsed < TimeSpan.FromSeconds(90))
        {
            try
            {
                await using NpgsqlConnection read = await session.OpenReadConnectionAsync(EuWest, cancellationToken);
                served = await IsVisibleAsync(read, id, cancellationToken);
            }
            catch (Exception e) when (e is ReadYourWritesTimeoutException or OrleansException or TimeoutException)
            {
                Console.WriteLine($"    {sw.Elapsed.TotalSeconds,4:0.0} s: {e.GetType().Name}");
            }
        }

        TimeSpan readBack = sw.Elapsed;
        LsnTrackerStatus after = await tracker.GetStatus();
        Console.WriteLine($"  {readBack.TotalSeconds:0.0} s after the kill: read-your-writes in eu-west works again; the tracker now runs on {deployment.SiloAt(after.Silo)?.Name}");
        bool resumed = await WaitAsync(() => pushes.Latest >= written, TimeSpan.FromSeconds(60), cancellationToken);
        Console.WriteLine($"  {sw.Elapsed.TotalSeconds:0.0} s after the kill: the replay subscription got its pushes again (renewed by itself; latest {pushes.Latest})");
        return served && resumed && after.Silo != before.Silo;
    }

    private static void Phase(string title)
    {
        Console.WriteLine();
        Console.WriteLine("== " + title);
    }

    private static async Task<long> InsertAsync(NpgsqlConnection connection, string note, string region, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"insert into {ClusterCommand.DemoTable}(note, region) values ($1, $2) returning id", connection);
        command.Parameters.AddWithValue(note);
        command.Parameters.AddWithValue(region);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task InsertManyAsync(NpgsqlDataSource primary, int rows, CancellationToken cancellationToken)
    {
        await using NpgsqlCommand command = primary.CreateCommand($"insert into {ClusterCommand.DemoTable}(note) select 'streamed ' || g from generate_series(1, $1) g");
        command.Parameters.AddWithValue(rows);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<bool> IsVisibleAsync(NpgsqlDataSource source, long id, CancellationToken cancellationToken)
    {
        await using NpgsqlConnection connection = await source.OpenConnectionAsync(cancellationToken);
        return await IsVisibleAsync(connection, id, cancellationToken);
    }

    private static async Task<bool> IsVisibleAsync(NpgsqlConnection connection, long id, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"select exists(select 1 from {ClusterCommand.DemoTable} where id = $1)", connection);
        command.Parameters.AddWithValue(id);
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static Task<bool> WaitAsync(Func<bool> condition, TimeSpan timeout, CancellationToken cancellationToken) =>
        WaitAsync(() => Task.FromResult(condition()), timeout, cancellationToken);

    private static async Task<bool> WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > timeout)
            {
                return false;
            }

            await Task.Delay(20, cancellationToken);
        }

        return true;
    }

    /// <summary>Counts replay pushes and keeps the latest position.</summary>
    private sealed class PushCounter : ILsnObserver
    {
        private long _count;
        private long _latest;

        public long Count => Interlocked.Read(ref _count);

        public Lsn Latest => new((ulong)Interlocked.Read(ref _latest));

        public Task OnLsnReplicated(string region, Lsn requested, Lsn replay) => OnReplayAdvanced(region, replay);

        public Task OnReplayAdvanced(string region, Lsn replay)
        {
            Interlocked.Increment(ref _count);
            long value = (long)replay.Value;
            long seen = Interlocked.Read(ref _latest);
            while (value > seen && Interlocked.CompareExchange(ref _latest, value, seen) != seen)
            {
                seen = Interlocked.Read(ref _latest);
            }

            return Task.CompletedTask;
        }
    }

    /// <summary>The client-side change observer: prints each batch; returning confirms it.</summary>
    private sealed class PrintingObserver : IChangeObserver
    {
        private long _rows;
        private long _lastEnd;

        public long Rows => Interlocked.Read(ref _rows);

        public Lsn LastEnd => new((ulong)Interlocked.Read(ref _lastEnd));

        public Task OnChanges(ChangeBatch batch)
        {
            Interlocked.Add(ref _rows, batch.Changes.Count);
            if (batch.IsLastFragment)
            {
                Interlocked.Exchange(ref _lastEnd, (long)batch.EndLsn.Value);
            }

            string ids = string.Join(",", batch.Changes.Take(5).Select(c => c["id"])) + (batch.Changes.Count > 5 ? ",..." : "");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    batch: commit {batch.CommitLsn,-11} xid {batch.Xid,-6} {batch.Changes.Count,4} row(s) [{ids}]{(batch.IsLastFragment ? "" : $" (fragment {batch.Fragment})")}"));
            return Task.CompletedTask;
        }
    }
}
