using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace OrleansLsn.Silo;

/// <summary>
/// The change-streaming half of the demo: the <see cref="IReplicationGrain"/> of a demo slot, a client observer that
/// prints batches, a pause through the grain that holds the walsender back while writes continue, and the resume. The
/// slot and publication are dropped at the end, so the demo never leaves a slot pinning WAL on a server.
/// </summary>
internal static class ReplicationDemo
{
    internal const string Slot = "orleanslsn_demo";
    internal const string Publication = "orleanslsn_demo_pub";

    internal static async Task<bool> RunAsync(string primaryCs, IClusterClient client, CancellationToken cancellationToken)
    {
        Console.WriteLine();
        Console.WriteLine($"Change streaming: the replication grain of slot '{Slot}' (pgoutput, publication '{Publication}' for table orleanslsn_demo), to an observer in the client.");
        await using var primary = new NpgsqlConnection(primaryCs);
        await primary.OpenAsync(cancellationToken);
        await DropAsync(primary, cancellationToken);
        var printer = new PrintingObserver();
        IChangeObserver reference = client.CreateObjectReference<IChangeObserver>(printer);
        IReplicationGrain grain = client.GetGrain<IReplicationGrain>(Slot);
        try
        {
            await grain.Subscribe(reference);
            if (!await WaitAsync(async () => await grain.GetStatus() is { State: ReplicationState.Streaming, ServerPid: not null }, cancellationToken))
            {
                Console.WriteLine($"  the grain did not start streaming: {(await grain.GetStatus()).LastError}");
                return false;
            }

            ReplicationStatus status = await grain.GetStatus();
            Console.WriteLine($"  streaming on silo {status.Silo} from walsender PID {status.ServerPid}; status updates every {status.StatusInterval.TotalMilliseconds:0} ms (a third of wal_sender_timeout, capped)");
            await InsertAsync(primary, 3, cancellationToken);
            await WaitAsync(() => Task.FromResult(printer.Rows >= 3), cancellationToken);

            await grain.Pause();
            Console.WriteLine("  paused through the grain: writing 2000 rows in one transaction while the pump reads nothing...");
            await InsertAsync(primary, 2000, cancellationToken);
            await WaitAsync(async () => (await grain.GetStatus()).LagBytes > 0, cancellationToken);
            status = await grain.GetStatus();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  while paused: {printer.Rows} rows delivered, lag {status.LagBytes / 1024.0:0.0} KiB, pause reasons {status.PauseReasons}, walsender PID {status.ServerPid}"));
            var resume = Stopwatch.StartNew();
            await grain.Resume();
            await WaitAsync(() => Task.FromResult(printer.Rows >= 2003), cancellationToken);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  resumed: all {printer.Rows} rows delivered {resume.Elapsed.TotalMilliseconds:0.0} ms after the resume (the large transaction came in fragments of at most 1000 rows)"));
            await WaitAsync(async () => await grain.GetStatus() is { BacklogBatches: 0 } s && s.FlushedLsn >= printer.LastEnd, cancellationToken);
            status = await grain.GetStatus();
            Console.WriteLine($"  acknowledged to PostgreSQL up to {status.FlushedLsn}; reconnects {status.ReconnectCount}; backlog {status.BacklogBatches} batch(es)");
            await grain.Unsubscribe(reference);
            return printer.Rows >= 2003;
        }
        finally
        {
            client.DeleteObjectReference<IChangeObserver>(reference);
            await DropAsync(primary, CancellationToken.None);
            Console.WriteLine($"  dropped slot '{Slot}' and publication '{Publication}'.");
        }
    }

    private static async Task<bool> WaitAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
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
        // The slot may still be held for a moment by the grain's pump while it stops.
        for (int attempt = 0; attempt < 50; attempt++)
        {
            await using var check = new NpgsqlCommand($"select count(*) from pg_replication_slots where slot_name = '{Slot}' and active", primary);
            if ((long)(await check.ExecuteScalarAsync(cancellationToken))! == 0)
            {
                break;
            }

            await Task.Delay(100, cancellationToken);
        }

        await using var command = new NpgsqlCommand(
            $"select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '{Slot}' and not active; drop publication if exists {Publication}",
            primary);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The client-side observer: prints each batch; returning confirms it.</summary>
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
                $"  batch: commit {batch.CommitLsn,-11} xid {batch.Xid,-6} {batch.Changes.Count,3} row(s) [{ids}]{(batch.IsLastFragment ? "" : $" (fragment {batch.Fragment})")}"));
            return Task.CompletedTask;
        }
    }
}
