using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>demo</c>: read-your-writes through the tracker grain, called by an Orleans cluster client over TCP. Writes on the
/// primary, waits on the region's <see cref="ILsnTrackerGrain"/> for the standby to replay the write, reads it there,
/// and prints what happened with timings; also shows the stale read you get without waiting, and a timeout while
/// replay is paused. Then streams the same table's changes through the <see cref="IReplicationGrain"/> to a client
/// observer, with a pause and resume.
/// </summary>
internal static class DemoCommand
{
    private const string Region = "local";

    internal static Command Create()
    {
        var writes = new Option<int>("--writes") { Description = "How many write/wait/read rounds to run.", DefaultValueFactory = _ => 20 };
        var primary = new Option<string?>("--primary") { Description = "Connection string of your own primary (default: start a local primary and standby)." };
        var standby = new Option<string?>("--standby") { Description = "Connection string of your own hot standby (with --primary)." };
        var timeout = new Option<double>("--timeout-ms") { Description = "Wait timeout per write, in milliseconds.", DefaultValueFactory = _ => 3000 };
        var command = new Command("demo", "Demo: read-your-writes through the LSN tracker (write on the primary, wait, read on the standby), then change streaming through the replication pump with pause and resume.")
        {
            writes, primary, standby, timeout,
        };
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            int rounds = result.GetValue(writes);
            string? primaryCs = result.GetValue(primary);
            string? standbyCs = result.GetValue(standby);
            if (rounds < 1 || rounds > 100_000)
            {
                Console.Error.WriteLine("--writes must be between 1 and 100000.");
                return 2;
            }

            if ((primaryCs is null) != (standbyCs is null))
            {
                Console.Error.WriteLine("Give both --primary and --standby, or neither (then a local primary and standby are started).");
                return 2;
            }

            return await RunAsync(rounds, primaryCs, standbyCs, TimeSpan.FromMilliseconds(result.GetValue(timeout)), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(int rounds, string? primaryCs, string? standbyCs, TimeSpan timeout, CancellationToken cancellationToken)
    {
        LocalPostgresCluster? cluster = null;
        try
        {
            if (primaryCs is null)
            {
                Console.WriteLine("Starting a local PostgreSQL primary and hot standby from the machine's binaries...");
                var sw = Stopwatch.StartNew();
                cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "demo" }, cancellationToken);
                primaryCs = cluster.Primary.ConnectionString;
                standbyCs = cluster.Standby!.ConnectionString;
                Console.WriteLine($"  primary 127.0.0.1:{cluster.Primary.Port}, standby 127.0.0.1:{cluster.Standby.Port} (pg_basebackup -R), ready in {sw.Elapsed.TotalSeconds:0.0} s");
            }

            await using var primary = new NpgsqlConnection(primaryCs);
            await primary.OpenAsync(cancellationToken);
            await using var standby = new NpgsqlConnection(standbyCs);
            await standby.OpenAsync(cancellationToken);
            await ExecAsync(primary, "create table if not exists orleanslsn_demo(id bigserial primary key, note text not null, written_at timestamptz not null default clock_timestamp())", cancellationToken);
            await ReplicaControl.WaitForCatchUpAsync(primaryCs, standbyCs!, TimeSpan.FromSeconds(30), cancellationToken);

            Console.WriteLine("Starting an Orleans silo (region 'local', watching the standby) and a cluster client over TCP...");
            var swCluster = Stopwatch.StartNew();
            var settings = new Dictionary<string, string?>
            {
                ["OrleansLsn:Region"] = Region,
                ["OrleansLsn:PrimaryConnectionString"] = primaryCs,
                ["OrleansLsn:ReplicaConnectionString"] = standbyCs,
                ["OrleansLsn:Tracker:DefaultWaitTimeout"] = timeout.ToString("c", CultureInfo.InvariantCulture),
                ["OrleansLsn:Replication:Slots:0:Name"] = ReplicationDemo.Slot,
                ["OrleansLsn:Replication:Slots:0:Publication"] = ReplicationDemo.Publication,
                ["OrleansLsn:Replication:Slots:0:Tables:0"] = "orleanslsn_demo",
            };
            await using DemoCluster orleans = await DemoCluster.StartAsync(settings, cancellationToken);
            ILsnTrackerGrain tracker = orleans.Client.GetGrain<ILsnTrackerGrain>(Region);
            LsnTrackerStatus status = await tracker.GetStatus();
            for (int i = 0; i < 100 && status.Health == TrackerHealthStatus.Starting; i++)
            {
                // The first call activated the grain; its first poll of the standby follows within milliseconds.
                await Task.Delay(20, cancellationToken);
                status = await tracker.GetStatus();
            }

            Console.WriteLine($"  gateway 127.0.0.1:{orleans.GatewayPort}, ready in {swCluster.Elapsed.TotalSeconds:0.0} s");
            Console.WriteLine($"Tracker grain for region '{status.Region}' on silo {status.Silo}: {status.Health}, replica replay at {status.LastReplay}, primary={status.IsPrimary}");
            Console.WriteLine();
            Console.WriteLine("  #  commit LSN       read w/o wait  wait       outcome  replay LSN       read after wait");
            Console.WriteLine("  -  ---------------  -------------  ---------  -------  ---------------  ---------------");

            var waits = new List<double>();
            int staleWithoutWait = 0;
            int visibleAfterWait = 0;
            for (int i = 1; i <= rounds; i++)
            {
                string note = $"write {i} at {DateTime.UtcNow:O}";
                long id = await InsertAsync(primary, note, cancellationToken);

                // What a reader sees on the standby straight after the commit, without waiting.
                bool visibleNow = await IsVisibleAsync(standby, id, cancellationToken);
                if (!visibleNow)
                {
                    staleWithoutWait++;
                }

                Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken);

                var sw = Stopwatch.StartNew();
                LsnWaitResult wait = await tracker.RequestAndAwait(lsn, timeout, cancellationToken);
                double waitMs = sw.Elapsed.TotalMilliseconds;
                waits.Add(waitMs);
                bool visibleAfter = await IsVisibleAsync(standby, id, cancellationToken);
                if (visibleAfter)
                {
                    visibleAfterWait++;
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{i,3}  {lsn,-15}  {(visibleNow ? "visible" : "STALE (missing)"),-13}  {waitMs,6:0.00} ms  {wait.Outcome,-7}  {wait.ReplayLsn,-15}  {(visibleAfter ? "visible" : "MISSING")}"));
            }

            waits.Sort();
            status = await tracker.GetStatus();
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Summary: {rounds} writes. Reading the standby right after commit missed the write {staleWithoutWait} time(s); after waiting on the tracker grain it was visible {visibleAfterWait} of {rounds} time(s)."));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Wait after commit (client -> gateway -> grain -> engine): p50 {Percentile(waits, 0.50):0.00} ms, p99 {Percentile(waits, 0.99):0.00} ms, max {waits[^1]:0.00} ms. Tracker: {status.Health}, one replica connection for all waiters."));

            if (cluster is not null)
            {
                Console.WriteLine();
                Console.WriteLine("Pausing replay on the standby (pg_wal_replay_pause) to show a timeout...");
                await cluster.PauseReplayAsync(cancellationToken);
                long id = await InsertAsync(primary, "written while replay is paused", cancellationToken);
                Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken);
                var sw = Stopwatch.StartNew();
                LsnWaitResult paused = await tracker.RequestAndAwait(lsn, TimeSpan.FromMilliseconds(500), cancellationToken);
                Console.WriteLine($"  wait for {lsn} with a 500 ms timeout: {paused.Outcome} after {sw.Elapsed.TotalMilliseconds:0} ms (replay stuck at {paused.ReplayLsn}); row visible on standby: {await IsVisibleAsync(standby, id, cancellationToken)}");
                Task<LsnWaitResult> pending = tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(10), cancellationToken);
                LsnTrackerStatus waiting = await tracker.GetStatus();
                for (int i = 0; i < 100 && waiting.PendingWaiters == 0; i++)
                {
                    await Task.Delay(10, cancellationToken);
                    waiting = await tracker.GetStatus();
                }

                Console.WriteLine($"  a second wait (10 s timeout) is pending in the grain: {waiting.PendingWaiters} waiter(s); resuming replay...");
                sw.Restart();
                await cluster.ResumeReplayAsync(cancellationToken);
                LsnWaitResult resumed = await pending;
                Console.WriteLine($"  resumed replay: the pending wait was {resumed.Outcome} {sw.Elapsed.TotalMilliseconds:0.0} ms after the resume; row visible on standby: {await IsVisibleAsync(standby, id, cancellationToken)}");
            }

            bool streamed = await ReplicationDemo.RunAsync(primaryCs!, orleans.Client, cancellationToken);
            return visibleAfterWait == rounds && streamed ? 0 : 1;
        }
        catch (LocalPostgresException ex)
        {
            Console.Error.WriteLine($"Could not start the local PostgreSQL: {ex.Message}");
            return 3;
        }
        finally
        {
            if (cluster is not null)
            {
                await cluster.DisposeAsync();
                Console.WriteLine("Stopped the local primary and standby and removed their folder.");
            }
        }
    }

    private static async Task ExecAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<long> InsertAsync(NpgsqlConnection primary, string note, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("insert into orleanslsn_demo(note) values ($1) returning id", primary);
        command.Parameters.AddWithValue(note);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task<bool> IsVisibleAsync(NpgsqlConnection standby, long id, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("select exists(select 1 from orleanslsn_demo where id = $1)", standby);
        command.Parameters.AddWithValue(id);
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
