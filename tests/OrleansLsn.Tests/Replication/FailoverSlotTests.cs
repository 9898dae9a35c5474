using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// Failover slots (PostgreSQL 17+) on a primary and a slot-synchronising standby of their own (the standby is
/// promoted): the pump creates its slot with failover, the standby keeps a synchronised copy, and after the primary
/// stops and the standby is promoted the pump resumes there from the copy, losing no committed row. On PostgreSQL 15
/// and 16 the same tests assert the refusal instead (the pump's error naming the version, and the local cluster's), so
/// they never pass by skipping.
/// </summary>
public sealed class FailoverSlotTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static int BinariesMajorVersion => PostgresBinaries.GetMajorVersion(PostgresBinaries.FindBinDirectory());

    [Fact]
    public async Task StandbyPromotedWhileWriting_PumpResumesFromTheSyncedSlot_EveryCommittedRowArrives()
    {
        int major = BinariesMajorVersion;
        if (major < 17)
        {
            await AssertRefusedBefore17Async(major, nameof(StandbyPromotedWhileWriting_PumpResumesFromTheSyncedSlot_EveryCommittedRowArrives));
            return;
        }

        var options = new LocalPostgresOptions { Name = "failover-slots", SynchronizeSlots = true };
        options.Settings["wal_sender_timeout"] = "'2s'";
        await using LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(options, Ct);
        LocalPostgresServer primary = cluster.Primary;
        LocalPostgresServer standby = cluster.Standby!;
        // Synchronous replication, set on the primary alone (after the standby copied its configuration): a commit the
        // writer saw is on the standby, so the primary may crash. Only the pump's own guarantees are then under test.
        await FixtureScalarAsync<bool>(primary.ConnectionString, $"alter system set synchronous_standby_names = '{standby.Name}'");
        await FixtureScalarAsync<bool>(primary.ConnectionString, "select pg_reload_conf()");
        await Wait.UntilAsync(async () => await FixtureScalarAsync<string?>(primary.ConnectionString, "select sync_state from pg_stat_replication") == "sync", Timeout,
            () => "the standby to replicate synchronously", Ct);
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(primary.ConnectionString, nameof(StandbyPromotedWhileWriting_PumpResumesFromTheSyncedSlot_EveryCommittedRowArrives));

        // What an operator configures: both hosts in one string, the standby first (the pump skips it while it is one).
        string bothHosts = new NpgsqlConnectionStringBuilder(primary.ConnectionString)
        {
            Host = $"127.0.0.1:{standby.Port},127.0.0.1:{primary.Port}",
            TargetSessionAttributes = "primary",
            HostRecheckSeconds = 1,
        }.ConnectionString;
        ReplicationPump pump = scenario.StartPump(o =>
        {
            o.ConnectionString = bothHosts;
            o.Failover = true;
        });
        var recorder = new BatchRecorder();
        await using ReplicationSubscription subscription = pump.Subscribe(recorder.OnChangesAsync);
        await scenario.WaitStreamingAsync(pump);
        Assert.True(await FailoverFlagAsync(primary.ConnectionString, scenario.Slot), "the pump created its slot without failover");

        await using var writer = new Writer(bothHosts, scenario.Table);
        writer.Start();
        await Wait.UntilAsync(() => recorder.ConfirmedRows.Count() >= 300, Timeout,
            () => $"300 confirmed rows before the failover; got {recorder.ConfirmedRows.Count()}; status {pump.Status}", Ct);

        // Slot sync copies the slot once the primary's copy has moved past the standby's horizon; a standby snapshot
        // record lets the walsender move restart_lsn without waiting for the background writer's 15 s.
        var syncing = Stopwatch.StartNew();
        Lsn ackedOnPrimary = await scenario.ConfirmedFlushAsync();
        NpgsqlLogSequenceNumber synced;
        using (var nudgeStop = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            Task nudger = NudgeAsync(primary.ConnectionString, nudgeStop.Token);
            synced = await ReplicaControl.WaitForSyncedSlotAsync(standby.ConnectionString, scenario.Slot, new NpgsqlLogSequenceNumber(ackedOnPrimary.Value), Timeout, Ct);
            await nudgeStop.CancelAsync();
            await nudger;
        }

        syncing.Stop();
        Assert.True(await FailoverFlagAsync(standby.ConnectionString, scenario.Slot), "the standby's copy is not a failover slot");

        // The pump falls behind: what the writer commits now is in the standby's WAL but not consumed from the slot.
        // Without a failover slot these rows are lost at the promotion (a new slot starts after them).
        pump.Pause();
        int rowsAtPause = writer.CommittedCount;
        await Wait.UntilAsync(() => writer.CommittedCount >= rowsAtPause + 200, Timeout,
            () => $"200 rows committed while the pump is paused; {writer.CommittedCount - rowsAtPause} so far", Ct);

        // The failover, while the writer keeps committing to whichever server is the primary.
        int rowsBefore = writer.CommittedCount;
        Lsn ackAtFailover = pump.FlushedLsn;
        int oldPid = pump.Status.ServerPid ?? 0;
        var outage = Stopwatch.StartNew();
        await primary.StopAsync(immediate: true, Ct);
        await cluster.PromoteAsync(standby, Timeout, Ct);
        TimeSpan promoted = outage.Elapsed;
        await Wait.UntilAsync(() => pump.Status is { State: ReplicationState.Streaming, ServerPid: int p } && p != oldPid, Timeout,
            () => $"the pump streaming on the promoted standby; status {pump.Status}", Ct);
        TimeSpan resumed = outage.Elapsed;
        await Wait.UntilAsync(() => writer.CommittedOnNewPrimary >= 300, Timeout,
            () => $"300 rows committed on the promoted standby; {writer.CommittedOnNewPrimary} so far, writer failures {writer.Failures}", Ct);
        pump.Resume();
        await writer.StopAsync();

        IReadOnlyList<long> committed = writer.Committed;
        await Wait.UntilAsync(() => Delivered(recorder).Distinct().Count() >= committed.Count, Timeout,
            () => $"{committed.Count} committed rows delivered; got {Delivered(recorder).Distinct().Count()}; status {pump.Status}", Ct);

        // The pump streams from the promoted standby's slot, and acknowledges there.
        int? activeOnNew = await FixtureScalarAsync<int?>(standby.ConnectionString, $"select active_pid from pg_replication_slots where slot_name = '{scenario.Slot}'");
        Assert.Equal(pump.Status.ServerPid, activeOnNew);
        Lsn lastDelivered = recorder.Confirmed[^1].Batch.EndLsn;
        await Wait.UntilAsync(async () => await ConfirmedFlushAsync(standby.ConnectionString, scenario.Slot) >= lastDelivered, Timeout,
            () => $"the promoted standby's slot acknowledged up to {lastDelivered}", Ct);

        // Every committed row arrived; a row can arrive twice only if it was past the acknowledgement at the failover.
        var deliveries = recorder.Confirmed
            .SelectMany(c => c.Batch.Changes.Select(r => (Id: long.Parse(r["id"]!, CultureInfo.InvariantCulture), c.Batch.CommitLsn)))
            .ToList();
        var deliveredIds = deliveries.Select(d => d.Id).ToHashSet();
        List<long> missing = committed.Where(id => !deliveredIds.Contains(id)).ToList();
        Assert.True(missing.Count == 0, $"{missing.Count} committed rows never arrived, first {string.Join(", ", missing.Take(10))}");
        var duplicates = deliveries.GroupBy(d => d.Id).Where(g => g.Count() > 1).ToList();
        foreach (var duplicate in duplicates)
        {
            Lsn firstCommit = duplicate.Min(d => d.CommitLsn);
            Assert.True(firstCommit > ackAtFailover, $"row {duplicate.Key} (commit {firstCommit}) arrived {duplicate.Count()} times, but it was at or below the acknowledgement {ackAtFailover}");
        }

        Assert.True(writer.CommittedCount - rowsBefore >= 300, "the writer did not keep committing through the failover");
        Assert.True(rowsBefore - rowsAtPause >= 200, "too few rows were committed while the pump was behind");
        TestContext.Current.SendDiagnosticMessage(
            $"failover slots on PostgreSQL {major}: slot synced in {syncing.Elapsed.TotalSeconds:0.0} s (copy at {synced}, primary acked {ackedOnPrimary}); " +
            $"primary crashed (immediate stop) + standby promoted in {promoted.TotalSeconds:0.00} s, pump streaming on it after {resumed.TotalSeconds:0.00} s; " +
            $"{committed.Count} rows committed ({rowsBefore - rowsAtPause} while the pump was paused, {writer.CommittedOnNewPrimary} on the promoted standby, {writer.Failures} writer failures), " +
            $"{deliveries.Count} delivered, {duplicates.Count} duplicates (ack at failover {ackAtFailover}); reconnects {pump.Status.ReconnectCount}");
    }

    [Fact]
    public async Task ExistingSlotWithoutFailover_FailoverOn_IsReportedWithTheFix_ThenRecreatedWithFailover()
    {
        int major = BinariesMajorVersion;
        if (major < 17)
        {
            await AssertRefusedBefore17Async(major, nameof(ExistingSlotWithoutFailover_FailoverOn_IsReportedWithTheFix_ThenRecreatedWithFailover));
            return;
        }

        await using LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "failover-flag", WithStandby = false }, Ct);
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(cluster.Primary.ConnectionString, nameof(ExistingSlotWithoutFailover_FailoverOn_IsReportedWithTheFix_ThenRecreatedWithFailover));
        await scenario.ExecuteAsync($"select pg_create_logical_replication_slot('{scenario.Slot}', 'pgoutput')");

        ReplicationPump pump = scenario.StartPump(o => o.Failover = true);
        await Wait.UntilAsync(() => pump.Status.LastErrorKind == ReplicationErrorKind.SlotMismatch, Timeout,
            () => $"the slot mismatch reported; status {pump.Status}", Ct);
        ReplicationStatus refused = pump.Status;
        Assert.NotEqual(ReplicationState.Streaming, refused.State);
        Assert.Contains("exists without failover", refused.LastError, StringComparison.Ordinal);
        Assert.Contains($"ALTER_REPLICATION_SLOT {scenario.Slot} (FAILOVER true)", refused.LastError, StringComparison.Ordinal);

        // The other fix the message names: drop the slot, and the retrying pump creates it with failover.
        await scenario.ExecuteAsync($"select pg_drop_replication_slot('{scenario.Slot}')");
        await scenario.WaitStreamingAsync(pump, Timeout);
        Assert.True(await FailoverFlagAsync(cluster.Primary.ConnectionString, scenario.Slot), "the recreated slot has no failover");
    }

    /// <summary>
    /// Before 17: the local cluster refuses <see cref="LocalPostgresOptions.SynchronizeSlots"/>, and a pump with
    /// <see cref="ReplicationPumpOptions.Failover"/> reports a configuration error naming the version, creates no slot and
    /// does not stream.
    /// </summary>
    private static async Task AssertRefusedBefore17Async(int major, string testName)
    {
        var refused = await Assert.ThrowsAsync<LocalPostgresException>(() =>
            LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "failover-old", SynchronizeSlots = true }, Ct));
        Assert.Contains("needs PostgreSQL 17 or later", refused.Message, StringComparison.Ordinal);
        Assert.Contains($"PostgreSQL {major}", refused.Message, StringComparison.Ordinal);

        await using LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "failover-old", WithStandby = false }, Ct);
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(cluster.Primary.ConnectionString, testName);
        ReplicationPump pump = scenario.StartPump(o => o.Failover = true);
        await Wait.UntilAsync(() => pump.Status.LastErrorKind == ReplicationErrorKind.ServerConfiguration, Timeout,
            () => $"the version refusal; status {pump.Status}", Ct);
        ReplicationStatus status = pump.Status;
        Assert.NotEqual(ReplicationState.Streaming, status.State);
        Assert.Contains($"the server is PostgreSQL {major}.", status.LastError, StringComparison.Ordinal);
        Assert.Contains("failover slots need PostgreSQL 17 or later", status.LastError, StringComparison.Ordinal);
        Assert.Equal(0L, await FixtureScalarAsync<long>(cluster.Primary.ConnectionString, $"select count(*) from pg_replication_slots where slot_name = '{scenario.Slot}'"));
        TestContext.Current.SendDiagnosticMessage($"failover slots on PostgreSQL {major}: refused as expected: {status.LastError}");
    }

    private static IEnumerable<long> Delivered(BatchRecorder recorder) =>
        recorder.ConfirmedRows.Select(r => long.Parse(r["id"]!, CultureInfo.InvariantCulture));

    private static Task<bool> FailoverFlagAsync(string connectionString, string slot) =>
        FixtureScalarAsync<bool>(connectionString, $"select failover from pg_replication_slots where slot_name = '{slot}'");

    private static async Task<Lsn> ConfirmedFlushAsync(string connectionString, string slot)
    {
        string? text = await FixtureScalarAsync<string?>(connectionString, $"select confirmed_flush_lsn::text from pg_replication_slots where slot_name = '{slot}'");
        return text is null ? Lsn.Invalid : Lsn.Parse(text);
    }

    private static async Task<T> FixtureScalarAsync<T>(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        object? value = await cmd.ExecuteScalarAsync(Ct);
        return value is null or DBNull ? default! : (T)value;
    }

    /// <summary>Logs a standby snapshot on the primary every 200 ms until cancelled (PostgreSQL 16+).</summary>
    private static async Task NudgeAsync(string primaryConnectionString, CancellationToken cancellationToken)
    {
        try
        {
            await using var conn = new NpgsqlConnection(primaryConnectionString);
            await conn.OpenAsync(cancellationToken);
            await using var cmd = new NpgsqlCommand("select pg_log_standby_snapshot()", conn);
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
            do
            {
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Commits transactions of one to five rows with fresh consecutive ids to whichever server is the primary (a
    /// multi-host connection with <c>Target Session Attributes=primary</c>), and records the ids of every commit that
    /// succeeded. A failed transaction's ids are never reused (it may have committed).
    /// </summary>
    private sealed class Writer(string connectionString, string table) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly object _lock = new();
        private readonly List<long> _committed = new();
        private Task? _loop;
        private int _failures;
        private int _committedOnNewPrimary;

        public IReadOnlyList<long> Committed
        {
            get
            {
                lock (_lock)
                {
                    return _committed.ToList();
                }
            }
        }

        public int CommittedCount
        {
            get
            {
                lock (_lock)
                {
                    return _committed.Count;
                }
            }
        }

        /// <summary>Rows committed on a server on timeline 2 or later (the promoted standby).</summary>
        public int CommittedOnNewPrimary => Volatile.Read(ref _committedOnNewPrimary);

        public int Failures => Volatile.Read(ref _failures);

        public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            if (_loop is not null)
            {
                await _loop;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _stop.Dispose();
        }

        private async Task RunAsync(CancellationToken stop)
        {
            var random = new Random(Environment.TickCount);
            long nextId = 1;
            NpgsqlConnection? conn = null;
            bool onNewPrimary = false;
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    int size = random.Next(1, 6);
                    long from = nextId;
                    nextId += size;
                    try
                    {
                        if (conn is null)
                        {
                            conn = new NpgsqlConnection(connectionString);
                            await conn.OpenAsync(stop);
                            // The promotion's end-of-recovery checkpoint may not have run yet; the WAL file name tells the timeline at once.
                            await using var insertTimeline = new NpgsqlCommand("select substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8)::text", conn);
                            onNewPrimary = int.Parse((string)(await insertTimeline.ExecuteScalarAsync(stop))!, NumberStyles.HexNumber, CultureInfo.InvariantCulture) > 1;
                        }

                        await using var cmd = new NpgsqlCommand($"insert into {table} select g, 'w' from generate_series($1::bigint, $2::bigint) g", conn);
                        cmd.Parameters.AddWithValue(from);
                        cmd.Parameters.AddWithValue(from + size - 1);
                        await cmd.ExecuteNonQueryAsync(stop);
                        lock (_lock)
                        {
                            for (long id = from; id < from + size; id++)
                            {
                                _committed.Add(id);
                            }
                        }

                        if (onNewPrimary)
                        {
                            Interlocked.Add(ref _committedOnNewPrimary, size);
                        }

                        await Task.Delay(1, stop); // pacing, not synchronisation
                    }
                    catch (Exception e) when (e is NpgsqlException or IOException or InvalidOperationException && !stop.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref _failures);
                        if (conn is not null)
                        {
                            await conn.DisposeAsync();
                            conn = null;
                        }

                        await Task.Delay(20, stop); // retry pacing while no server is the primary
                    }
                }
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                // Stopped in the middle of a statement.
            }
            finally
            {
                if (conn is not null)
                {
                    await conn.DisposeAsync();
                }
            }
        }
    }
}
