using System.Diagnostics;
using System.Globalization;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

[Collection(MemoryMeasurementCollection.Name)]
public sealed class ReplicationBackpressureTests(PostgresFixture fixture)
{
    /// <summary>
    /// The bound on RSS growth while paused: socket buffers plus Npgsql's read buffer are a few MB; 32 MB leaves room
    /// for the runtime's own noise but fails if the pump kept reading into memory (the backlog here is over 100 MB).
    /// </summary>
    private const long RssGrowthBoundBytes = 32L * 1024 * 1024;

    private const int Rows = 100_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task PausedConsumer_SurvivesFiveTimesWalSenderTimeout_WithA100MbBacklog_AndFlatMemory()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(PausedConsumer_SurvivesFiveTimesWalSenderTimeout_WithA100MbBacklog_AndFlatMemory));
        TimeSpan senderTimeout = ReplicationPump.ParsePostgresDuration((await scenario.ScalarAsync<string>("show wal_sender_timeout"))!);
        Assert.True(senderTimeout > TimeSpan.Zero && senderTimeout <= TimeSpan.FromSeconds(5), $"the test needs a short wal_sender_timeout; it is {senderTimeout}");
        ReplicationPump pump = scenario.StartPump();
        long delivered = 0;
        long lastId = 0;
        string? orderError = null;
        await using ReplicationSubscription subscription = pump.Subscribe((batch, _) =>
        {
            foreach (RowChange change in batch.Changes)
            {
                long id = long.Parse(change.NewValues![0]!, CultureInfo.InvariantCulture);
                if (id != lastId + 1)
                {
                    orderError ??= $"row {id} after {lastId}";
                }

                lastId = id;
                delivered++;
            }

            return Task.CompletedTask;
        });
        await scenario.WaitStreamingAsync(pump);
        int pid = pump.Status.ServerPid!.Value;
        int logStart = (await ReadLogAsync()).Length;
        pump.Pause();

        Lsn start = Lsn.Parse((await scenario.ScalarAsync<string>("select pg_current_wal_lsn()::text"))!);
        long rssBefore = Rss();
        string payload = new('b', 1000);
        for (int i = 0; i < 4; i++)
        {
            await scenario.InsertRangeAsync((i * (Rows / 4)) + 1, (i + 1) * (Rows / 4), payload);
        }

        Lsn written = Lsn.Parse((await scenario.ScalarAsync<string>("select pg_current_wal_lsn()::text"))!);
        long backlogBytes = written - start;
        Assert.True(backlogBytes >= 100L * 1024 * 1024, $"the backlog is {backlogBytes / 1024 / 1024} MB of WAL; the test needs at least 100 MB");

        // Hold the pause for five times wal_sender_timeout, checking the walsender all along.
        var held = Stopwatch.StartNew();
        long rssMax = rssBefore;
        long sentBehind = long.MaxValue;
        while (held.Elapsed < senderTimeout * 5)
        {
            int? walsender = await scenario.ScalarAsync<int?>($"select pid from pg_stat_replication where pid = {pid}");
            if (walsender != pid)
            {
                Assert.Fail($"walsender {pid} disconnected after {held.Elapsed.TotalSeconds:0.0} s of pause; log: {(await ReadLogAsync())[logStart..]}");
            }

            string? sent = await scenario.ScalarAsync<string>($"select sent_lsn::text from pg_stat_replication where pid = {pid}");
            sentBehind = Math.Min(sentBehind, written - Lsn.Parse(sent!));
            rssMax = Math.Max(rssMax, Rss());
            Assert.Equal(PauseReasons.Manual, pump.Status.PauseReasons);
            await Task.Delay(250, Ct); // sampling cadence of the checks above, not synchronisation
        }

        ReplicationStatus status = pump.Status;
        Assert.Equal(0, status.ReconnectCount);
        Assert.Equal(pid, status.ServerPid);
        Assert.DoesNotContain("replication timeout", (await ReadLogAsync())[logStart..], StringComparison.Ordinal);
        Assert.True(sentBehind > 50L * 1024 * 1024, $"the walsender must be held back by TCP backpressure; it got within {sentBehind / 1024} KB of the WAL end");
        Assert.True(rssMax - rssBefore <= RssGrowthBoundBytes, $"RSS grew by {(rssMax - rssBefore) / 1024 / 1024} MB while paused (bound {RssGrowthBoundBytes / 1024 / 1024} MB)");
        Assert.Equal(0, Interlocked.Read(ref delivered));
        // Keepalives sent while the walsender read the first transaction may move the acknowledged position into it
        // (safe: the transaction commits later), so the lag is somewhat below the full backlog.
        Assert.True(status.LagBytes > 50L * 1024 * 1024, $"the lag {status.LagBytes} shows the unread backlog {backlogBytes}");

        pump.Resume();
        await Wait.UntilAsync(() => Interlocked.Read(ref delivered) >= Rows, TimeSpan.FromSeconds(120), () => $"all {Rows} rows after resume; got {Interlocked.Read(ref delivered)}; status {pump.Status}", Ct);
        Assert.Null(orderError);
        Assert.Equal(Rows, lastId);
        Assert.Equal(pid, pump.Status.ServerPid);
        TestContext.Current.SendDiagnosticMessage($"paused {held.Elapsed.TotalSeconds:0.0} s with {backlogBytes / 1024 / 1024} MB of WAL unread; RSS growth {(rssMax - rssBefore) / 1024.0 / 1024:0.0} MB; walsender held {sentBehind / 1024 / 1024} MB behind");
    }

    private async Task<string> ReadLogAsync() =>
        fixture.Cluster is { } cluster ? await cluster.Primary.ReadLogAsync(Ct) : "";

    private static long Rss()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return Environment.WorkingSet;
    }
}
