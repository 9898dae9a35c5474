using System.Diagnostics;
using System.Globalization;
using Npgsql;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// No loss under faults, on a primary of its own (it is restarted): the walsender is killed at random points of a
/// running workload, then the primary is restarted; every committed row must arrive, in commit order, and the slot's
/// <c>confirmed_flush_lsn</c> must never pass a transaction the subscriber had not confirmed.
/// </summary>
public sealed class ReplicationFaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task WalsenderKillsAndPrimaryRestart_EveryCommittedRowArrivesInCommitOrder_AckNeverAhead()
    {
        var options = new TestPostgresClusterOptions { Name = "repl-faults" };
        options.Settings["wal_sender_timeout"] = "'2s'";
        await using ITestPostgresCluster cluster = await TestPostgres.StartClusterAsync(options, Ct);
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(cluster.Primary.ConnectionString, nameof(WalsenderKillsAndPrimaryRestart_EveryCommittedRowArrivesInCommitOrder_AckNeverAhead));
        int seed = Environment.TickCount;
        var random = new Random(seed);
        string context = $"seed {seed}";

        // Small fragments, so that a kill often lands inside a transaction that was partly delivered.
        ReplicationPump pump = scenario.StartPump(o =>
        {
            o.MaxBatchChanges = 7;
            o.HighWaterBatches = 64;
            o.LowWaterBatches = 16;
        });
        var recorder = new BatchRecorder();
        var slowness = new Random(seed + 1);
        await using ReplicationSubscription subscription = pump.Subscribe(async (batch, ct) =>
        {
            if (slowness.Next(8) == 0)
            {
                await Task.Delay(slowness.Next(1, 10), ct); // a subscriber that is sometimes slow
            }

            await recorder.OnChangesAsync(batch, ct);
        });
        await scenario.WaitStreamingAsync(pump);

        using var samplerStop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var samples = new List<(Lsn Confirmed, long At)>();
        Task sampler = SampleConfirmedFlushAsync(scenario, samples, samplerStop.Token);

        // The workload: transactions of 1..30 rows with consecutive ids; faults at random transaction numbers.
        const int Transactions = 1500;
        var kills = new SortedSet<int>();
        while (kills.Count < 4)
        {
            kills.Add(random.Next(100, 1200));
        }

        int restartAt = random.Next(1250, 1450);
        int killsDone = 0;
        long nextId = 1;
        for (int t = 0; t < Transactions; t++)
        {
            int size = random.Next(1, 31);
            await CommitWithRetryAsync(scenario, nextId, nextId + size - 1);
            nextId += size;
            if (kills.Contains(t))
            {
                int? pid = await scenario.ActivePidAsync();
                if (pid is not null)
                {
                    await scenario.ExecuteAsync($"select pg_terminate_backend({pid})");
                    killsDone++;
                    await Wait.UntilAsync(() => pump.Status.ServerPid is int p && p != pid && pump.Status.State == ReplicationState.Streaming,
                        Timeout, () => $"a new walsender after killing {pid}; {context}; status {pump.Status}", Ct);
                }
            }

            if (t == restartAt)
            {
                await cluster.Primary.StopAsync(immediate: true, Ct);
                await cluster.Primary.StartAsync(Ct);
            }
        }

        long expectedRows = nextId - 1;
        await Wait.UntilAsync(() => recorder.ConfirmedRows.Count() >= expectedRows, Timeout,
            () => $"{expectedRows} rows; got {recorder.ConfirmedRows.Count()}; {context}; status {pump.Status}", Ct);
        await Wait.UntilAsync(() => pump.ConfirmedLsn >= recorder.Confirmed[^1].Batch.EndLsn, Timeout, () => "the last confirmation to register", Ct);
        await samplerStop.CancelAsync();
        await sampler;

        Assert.True(killsDone >= 3, $"only {killsDone} walsender kills landed; {context}");
        Assert.True(pump.Status.ReconnectCount >= killsDone + 1, $"reconnects {pump.Status.ReconnectCount} after {killsDone} kills and a restart; {context}");

        // The truth: what the table holds. Rows whose commit was cut by the restart may or may not be there.
        List<long> committed = await IdsAsync(scenario);
        IReadOnlyList<(ChangeBatch Batch, long ConfirmedAt)> confirmed = recorder.Confirmed;
        List<long> delivered = confirmed.SelectMany(c => c.Batch.Changes).Select(r => long.Parse(r["id"]!, CultureInfo.InvariantCulture)).ToList();

        // Within one pump there is not even a duplicate: the pump drops what it already delivered when the server replays.
        Assert.Equal(committed, delivered);
        Assert.Equal(committed.Count, delivered.Distinct().Count());

        // Commit order: commit LSNs never go back, fragments of a transaction are consecutive and complete.
        for (int i = 1; i < confirmed.Count; i++)
        {
            ChangeBatch previous = confirmed[i - 1].Batch;
            ChangeBatch current = confirmed[i].Batch;
            if (current.CommitLsn == previous.CommitLsn)
            {
                Assert.Equal(previous.Fragment + 1, current.Fragment);
                Assert.False(previous.IsLastFragment);
            }
            else
            {
                Assert.True(current.CommitLsn > previous.CommitLsn, $"batch {i} went back from {previous.CommitLsn} to {current.CommitLsn}; {context}");
                Assert.True(previous.IsLastFragment && current.Fragment == 0, $"transaction {previous.CommitLsn} is incomplete; {context}");
            }
        }

        // The acknowledgement never passed a transaction before its last fragment was confirmed.
        var transactionConfirmedAt = confirmed.Where(c => c.Batch.IsLastFragment).Select(c => (c.Batch.CommitLsn, c.ConfirmedAt)).ToList();
        Assert.True(samples.Count > 20, $"only {samples.Count} samples of confirmed_flush_lsn");
        foreach ((Lsn ack, long at) in samples)
        {
            foreach ((Lsn commit, long confirmedAt) in transactionConfirmedAt)
            {
                if (commit >= ack)
                {
                    break;
                }

                Assert.True(confirmedAt <= at, $"confirmed_flush_lsn {ack} passed commit {commit} before the subscriber confirmed it; {context}");
            }
        }
    }

    [Fact]
    public async Task NewPumpAfterStop_RedeliversOnlyPastTheLastAcknowledgement()
    {
        var options = new TestPostgresClusterOptions { Name = "repl-restart" };
        options.Settings["wal_sender_timeout"] = "'2s'";
        await using ITestPostgresCluster cluster = await TestPostgres.StartClusterAsync(options, Ct);
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(cluster.Primary.ConnectionString, nameof(NewPumpAfterStop_RedeliversOnlyPastTheLastAcknowledgement));

        ReplicationPump first = scenario.StartPump();
        var firstRecorder = new BatchRecorder();
        ReplicationSubscription firstSubscription = first.Subscribe(firstRecorder.OnChangesAsync);
        await scenario.WaitStreamingAsync(first);
        for (int i = 1; i <= 10; i++)
        {
            await scenario.InsertRangeAsync(i, i);
        }

        await Wait.UntilAsync(() => firstRecorder.Confirmed.Count == 10, Timeout, () => "ten confirmed batches", Ct);
        firstRecorder.Hold();
        for (int i = 11; i <= 15; i++)
        {
            await scenario.InsertRangeAsync(i, i);
        }

        await Wait.UntilAsync(() => firstRecorder.Received.Count == 11, Timeout, () => "the held eleventh batch", Ct);
        await firstSubscription.DisposeAsync();
        await first.DisposeAsync();
        // The walsender applies the pump's last status update on its own schedule, after the pump has closed; a new
        // pump can only take the slot once that walsender has exited, so wait for the slot to be free, then read.
        Lsn lastConfirmed = firstRecorder.Confirmed[^1].Batch.EndLsn;
        await Wait.UntilAsync(async () => await scenario.ActivePidAsync() is null, Timeout, () => "the first pump's walsender gone", Ct);
        Lsn acknowledged = await scenario.ConfirmedFlushAsync();
        Assert.True(acknowledged >= lastConfirmed, $"the stopping pump reported its last confirmation ({acknowledged} < {lastConfirmed})");

        ReplicationPump second = scenario.StartPump();
        var secondRecorder = new BatchRecorder();
        await using ReplicationSubscription secondSubscription = second.Subscribe(secondRecorder.OnChangesAsync);
        await Wait.UntilAsync(() => secondRecorder.Confirmed.Count == 5, Timeout, () => $"rows 11-15 from the new pump; got {secondRecorder.Confirmed.Count}", Ct);

        Assert.Equal(["11", "12", "13", "14", "15"], secondRecorder.ConfirmedRows.Select(r => r["id"]));
        Assert.All(secondRecorder.Confirmed, c => Assert.True(c.Batch.CommitLsn >= acknowledged));
        // The duplicate (row 11, received but never confirmed by the first pump's subscriber) is past the acknowledgement.
        Assert.Equal(firstRecorder.Received[10].CommitLsn, secondRecorder.Confirmed[0].Batch.CommitLsn);
    }

    private static async Task CommitWithRetryAsync(ReplicationScenario scenario, long from, long to)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await scenario.InsertRangeAsync(from, to);
                return;
            }
            catch (Exception e) when ((e is NpgsqlException || e is IOException) && attempt < 200)
            {
                // The primary is restarting. The commit may have happened before the connection broke: check.
                NpgsqlConnection.ClearAllPools();
                await WaitForServerAsync(scenario);
                long present = await scenario.ScalarAsync<long>($"select count(*) from {scenario.Table} where id between {from} and {to}");
                if (present == to - from + 1)
                {
                    return;
                }

                Assert.Equal(0, present);
            }
        }
    }

    private static async Task WaitForServerAsync(ReplicationScenario scenario)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await scenario.ScalarAsync<int>("select 1");
                return;
            }
            catch (Exception e) when ((e is NpgsqlException || e is IOException) && deadline.Elapsed < Timeout)
            {
                await Task.Delay(50, Ct);
            }
        }
    }

    private static async Task SampleConfirmedFlushAsync(ReplicationScenario scenario, List<(Lsn, long)> samples, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                Lsn confirmed = await scenario.ConfirmedFlushAsync();
                long at = Stopwatch.GetTimestamp();
                lock (samples)
                {
                    samples.Add((confirmed, at));
                }

                await Task.Delay(20, cancellationToken); // sampling cadence
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException || e is IOException)
            {
                // The primary is restarting.
            }
        }
    }

    private static async Task<List<long>> IdsAsync(ReplicationScenario scenario)
    {
        var ids = new List<long>();
        await using var conn = new NpgsqlConnection(scenario.ConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand($"select id from {scenario.Table} order by id", conn);
        await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            ids.Add(reader.GetInt64(0));
        }

        return ids;
    }
}
