using System.Collections.Concurrent;
using System.Diagnostics;
using Npgsql;
using NpgsqlTypes;
using Xunit;

namespace OrleansLsn.ComposeTests;

/// <summary>
/// docker-compose.yml run for real, through a plain Orleans client on the host: read-your-writes in both regions, a
/// change stream through the <see cref="IReplicationGrain"/>, and a killed silo's tracker served again by its region's
/// other silo. Each test retries within its deadline where a silo may have died, so their order does not matter.
/// </summary>
public sealed class ComposeEndToEndTests(ComposeCluster cluster)
{
    private const string Slot = "orders_slot";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("eu-west")]
    [InlineData("us-east")]
    public async Task WriteOnPrimary_WaitOnRegionsTracker_ReadOnRegionsReplica_SeesTheWrite(string region)
    {
        (long id, Lsn lsn) = await InsertOrderAsync(region, "read-your-writes");
        (LsnWaitResult result, LsnTrackerStatus status) = await WaitReadyAsync(region, lsn, avoidSilo: null);

        Assert.True(result.IsReady, $"{region}: {result}");
        Assert.Equal(region, status.Region);
        Assert.Equal(1L, await ScalarAsync<long>(cluster.Replicas[region], $"select count(*) from public.orders where id = {id}"));
        string service = await cluster.ServiceOfSiloAsync(status.Silo);
        Assert.StartsWith($"silo-{region}-", service, StringComparison.Ordinal);
        TestContext.Current.SendDiagnosticMessage($"{region}: write {id} at {lsn} ready, tracker on {service} ({status.Silo})");
    }

    [Fact]
    public async Task ChangeStreamThroughReplicationGrain_DeliversCommittedRowsInOrder()
    {
        var collector = new ChangeCollector();
        IChangeObserver observer = cluster.Client.CreateObjectReference<IChangeObserver>(collector);
        IReplicationGrain grain = cluster.Client.GetGrain<IReplicationGrain>(Slot);
        await RetryAsync("subscribe to " + Slot, () => grain.Subscribe(observer));
        try
        {
            // The first activation creates the slot: rows committed before it exists are not in its stream.
            var streaming = Stopwatch.StartNew();
            while ((await grain.GetStatus()).State != ReplicationState.Streaming)
            {
                Assert.True(streaming.Elapsed < Deadline, $"{Slot} not streaming within {Deadline.TotalSeconds:0} s: {await grain.GetStatus()}");
                await Task.Delay(50, Ct);
            }

            string note = $"stream-{Guid.NewGuid():N}";
            var ids = new List<long>();
            for (int i = 0; i < 20; i++)
            {
                ids.Add((await InsertOrderAsync("eu-west", note)).Id);
            }

            var waited = Stopwatch.StartNew();
            while (!ids.All(collector.Inserted.ContainsKey))
            {
                Assert.True(waited.Elapsed < Deadline, $"rows {string.Join(",", ids.Where(i => !collector.Inserted.ContainsKey(i)))} of {ids.Count} not streamed within {Deadline.TotalSeconds:0} s; status {await grain.GetStatus()}");
                await Task.Delay(50, Ct);
            }

            long[] order = [.. collector.InsertOrder.Where(ids.Contains).Distinct()];
            Assert.Equal(ids, order);
            ReplicationStatus status = await grain.GetStatus();
            TestContext.Current.SendDiagnosticMessage($"{ids.Count} rows streamed in {waited.Elapsed.TotalMilliseconds:0} ms through {Slot} on silo {status.Silo} ({(status.Silo is { } silo ? await cluster.ServiceOfSiloAsync(silo) : "?")})");
        }
        finally
        {
            await grain.Unsubscribe(observer);
            cluster.Client.DeleteObjectReference<IChangeObserver>(observer);
        }
    }

    [Fact]
    public async Task KilledSiloHostingTracker_TrackerServedAgainByTheRegionsOtherSilo()
    {
        const string Region = "eu-west";
        (_, Lsn first) = await InsertOrderAsync(Region, "before-kill");
        (_, LsnTrackerStatus before) = await WaitReadyAsync(Region, first, avoidSilo: null);
        string killed = await cluster.ServiceOfSiloAsync(before.Silo);

        await cluster.KillServiceAsync(killed);
        var sinceKill = Stopwatch.StartNew();

        (long id, Lsn lsn) = await InsertOrderAsync(Region, "after-kill");
        (LsnWaitResult result, LsnTrackerStatus after) = await WaitReadyAsync(Region, lsn, avoidSilo: before.Silo);
        sinceKill.Stop();

        Assert.True(result.IsReady);
        Assert.NotEqual(before.Silo, after.Silo);
        string service = await cluster.ServiceOfSiloAsync(after.Silo);
        Assert.StartsWith($"silo-{Region}-", service, StringComparison.Ordinal);
        Assert.NotEqual(killed, service);
        Assert.Equal(1L, await ScalarAsync<long>(cluster.Replicas[Region], $"select count(*) from public.orders where id = {id}"));
        TestContext.Current.SendDiagnosticMessage(
            $"docker kill {killed}: tracker({Region}) served again by {service} after {sinceKill.Elapsed.TotalSeconds:0.0} s");
    }

    /// <summary>
    /// <c>RequestAndAwait</c> on the region's tracker until it answers Ready from a silo other than
    /// <paramref name="avoidSilo"/>: calls to a silo that just died fail or time out until membership has declared it
    /// dead, and the wait is idempotent, so retrying within the deadline is what a client does.
    /// </summary>
    private async Task<(LsnWaitResult Result, LsnTrackerStatus Status)> WaitReadyAsync(string region, Lsn lsn, string? avoidSilo)
    {
        ILsnTrackerGrain tracker = cluster.Client.GetGrain<ILsnTrackerGrain>(region);
        var waited = Stopwatch.StartNew();
        string last = "no answer yet";
        while (waited.Elapsed < Deadline)
        {
            try
            {
                using var call = CancellationTokenSource.CreateLinkedTokenSource(Ct);
                call.CancelAfter(TimeSpan.FromSeconds(8));
                LsnWaitResult result = await tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(5), call.Token);
                LsnTrackerStatus status = await tracker.GetStatus();
                if (result.IsReady && status.Silo != avoidSilo)
                {
                    return (result, status);
                }

                last = $"{result} from silo {status.Silo}";
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException && !Ct.IsCancellationRequested)
            {
                last = $"{e.GetType().Name}: {e.Message}";
            }

            await Task.Delay(200, Ct);
        }

        throw new TimeoutException($"tracker({region}) did not answer Ready for {lsn}{(avoidSilo is null ? "" : $" from a silo other than {avoidSilo}")} within {Deadline.TotalSeconds:0} s; last: {last}");
    }

    private static async Task RetryAsync(string what, Func<Task> call)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await call();
                return;
            }
            catch (Exception e) when (waited.Elapsed < Deadline && !Ct.IsCancellationRequested)
            {
                TestContext.Current.SendDiagnosticMessage($"{what}: {e.GetType().Name}: {e.Message}; retrying");
                await Task.Delay(500, Ct);
            }
        }
    }

    /// <summary>Inserts an order on the primary (autocommit) and returns its id and the LSN to wait for.</summary>
    private async Task<(long Id, Lsn Lsn)> InsertOrderAsync(string region, string note)
    {
        await using var conn = new NpgsqlConnection(cluster.Primary);
        await conn.OpenAsync(Ct);
        await using var insert = new NpgsqlCommand("insert into public.orders(region, note) values ($1, $2) returning id", conn);
        insert.Parameters.AddWithValue(region);
        insert.Parameters.AddWithValue(note);
        long id = (long)(await insert.ExecuteScalarAsync(Ct))!;
        // After the commit: the insert position, moved back to the page boundary when it sits just past a WAL page
        // header (a position replicas report only once more WAL is written); what OrleansLsn's PrimaryLsn does.
        await using var position = new NpgsqlCommand("select pg_current_wal_insert_lsn(), current_setting('wal_block_size')::bigint", conn);
        await using NpgsqlDataReader reader = await position.ExecuteReaderAsync(Ct);
        await reader.ReadAsync(Ct);
        ulong lsn = (ulong)reader.GetFieldValue<NpgsqlLogSequenceNumber>(0);
        ulong page = (ulong)reader.GetInt64(1);
        ulong offset = lsn % page;
        return (id, new Lsn(offset is 24 or 40 ? lsn - offset : lsn));
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    private sealed class ChangeCollector : IChangeObserver
    {
        public ConcurrentDictionary<long, bool> Inserted { get; } = new();

        public ConcurrentQueue<long> InsertOrder { get; } = new();

        public Task OnChanges(ChangeBatch batch)
        {
            foreach (RowChange change in batch.Changes)
            {
                if (change.Kind == ChangeKind.Insert && change.Relation.Name == "orders" && long.TryParse(change["id"], out long id))
                {
                    InsertOrder.Enqueue(id);
                    Inserted[id] = true;
                }
            }

            return Task.CompletedTask;
        }
    }
}
