using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrleansLsn.Replication;

namespace OrleansLsn.Silo;

/// <summary>
/// The change-streaming half of the demo: a replication pump on a demo slot, a subscriber that prints batches, a manual
/// pause that holds the walsender back while writes continue, and the resume. The slot and publication are dropped at
/// the end, so the demo never leaves a slot pinning WAL on a server.
/// </summary>
internal static class ReplicationDemo
{
    private const string Slot = "orleanslsn_demo";
    private const string Publication = "orleanslsn_demo_pub";

    internal static async Task<bool> RunAsync(string primaryCs, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"Change streaming: a replication pump on slot '{Slot}' (pgoutput, publication '{Publication}' for table orleanslsn_demo).");
        await using var primary = new NpgsqlConnection(primaryCs);
        await primary.OpenAsync(cancellationToken);
        await DropAsync(primary, cancellationToken);
        var options = new ReplicationPumpOptions
        {
            ConnectionString = primaryCs,
            SlotName = Slot,
            PublicationName = Publication,
        };
        options.PublicationTables.Add("orleanslsn_demo");
        long delivered = 0;
        try
        {
            await using (var pump = new ReplicationPump(options, loggerFactory.CreateLogger<ReplicationPump>()))
            {
                await using ReplicationSubscription subscription = pump.Subscribe((batch, _) =>
                {
                    Interlocked.Add(ref delivered, batch.Changes.Count);
                    string ids = string.Join(",", batch.Changes.Take(5).Select(c => c["id"])) + (batch.Changes.Count > 5 ? ",..." : "");
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  batch: commit {batch.CommitLsn,-11} xid {batch.Xid,-6} {batch.Changes.Count,3} row(s) [{ids}]{(batch.IsLastFragment ? "" : $" (fragment {batch.Fragment})")}"));
                    return Task.CompletedTask;
                }, "demo-printer");
                pump.Start();
                if (!await WaitAsync(() => pump.Status.State == ReplicationState.Streaming && pump.Status.ServerPid is not null, cancellationToken))
                {
                    Console.WriteLine($"  the pump did not start streaming: {pump.Status.LastError}");
                    return false;
                }

                ReplicationStatus status = pump.Status;
                Console.WriteLine($"  streaming from walsender PID {status.ServerPid}; status updates every {status.StatusInterval.TotalMilliseconds:0} ms (a third of wal_sender_timeout, capped)");
                await InsertAsync(primary, 3, cancellationToken);
                await WaitAsync(() => Interlocked.Read(ref delivered) >= 3, cancellationToken);

                pump.Pause();
                Console.WriteLine("  paused (manual): writing 2000 rows in one transaction while the pump reads nothing...");
                await InsertAsync(primary, 2000, cancellationToken);
                await WaitAsync(() => pump.Status.LagBytes > 0, cancellationToken);
                status = pump.Status;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  while paused: {Interlocked.Read(ref delivered)} rows delivered, lag {status.LagBytes / 1024.0:0.0} KiB, pause reasons {status.PauseReasons}, walsender PID {status.ServerPid}"));
                var resume = Stopwatch.StartNew();
                pump.Resume();
                await WaitAsync(() => Interlocked.Read(ref delivered) >= 2003, cancellationToken);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  resumed: all {Interlocked.Read(ref delivered)} rows delivered {resume.Elapsed.TotalMilliseconds:0.0} ms after the resume (the large transaction came in fragments of at most {options.MaxBatchChanges} rows)"));
                await WaitAsync(() => pump.ConfirmedLsn != Lsn.Invalid && pump.FlushedLsn >= pump.ConfirmedLsn, cancellationToken);
                status = pump.Status;
                Console.WriteLine($"  acknowledged to PostgreSQL up to {status.FlushedLsn}; reconnects {status.ReconnectCount}; backlog {status.BacklogBatches} batch(es)");
            }

            return Interlocked.Read(ref delivered) >= 2003;
        }
        finally
        {
            await DropAsync(primary, CancellationToken.None);
            Console.WriteLine($"  dropped slot '{Slot}' and publication '{Publication}'.");
        }
    }

    private static async Task<bool> WaitAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                return false;
            }

            await Task.Delay(10, cancellationToken);
        }

        return true;
    }

    private static async Task InsertAsync(NpgsqlConnection primary, int rows, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("insert into orleanslsn_demo(note) select 'streamed ' || g from generate_series(1, $1) g", primary);
        command.Parameters.AddWithValue(rows);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task DropAsync(NpgsqlConnection primary, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            $"select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '{Slot}' and not active; drop publication if exists {Publication}",
            primary);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
