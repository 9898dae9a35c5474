using System.Globalization;
using Npgsql;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// Snapshot then stream on a slot that is already streaming to others (<see cref="ReplicationPump.SubscribeFromSnapshotAsync"/>),
/// on a real primary: each snapshot subscriber's copy plus its stream rebuilds the tables exactly (nothing twice, nothing
/// missing) under concurrent writers, the others keep streaming meanwhile, and the slot's confirmed position never passes
/// the hold of a subscriber still copying.
/// </summary>
public sealed class SnapshotSubscribeTests(PostgresFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SnapshotThenStream_OnARunningSlot_UnderWriters_EverySubscribersRebuiltTablesEqualThePrimary()
    {
        const int Rounds = 6;
        const int Writers = 3;
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(SnapshotThenStream_OnARunningSlot_UnderWriters_EverySubscribersRebuiltTablesEqualThePrimary));
        string second = scenario.Table + "_b";
        await scenario.ExecuteAsync($"drop table if exists {second}; create table {second}(id bigint primary key, payload text)");
        try
        {
            await scenario.ExecuteAsync($"insert into {scenario.Table} select g, 'seed ' || g from generate_series(1, 3000) g");
            await scenario.ExecuteAsync($"insert into {second} select g, 'seed ' || g from generate_series(1, 500) g");
            (ReplicationPump pump, BatchRecorder plain) = await scenario.StartStreamingAsync(o =>
            {
                o.PublicationTables.Add(second);
                o.MaxBatchChanges = 200;
            });

            using var stopWriters = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => WriteAsync(fixture.PrimaryConnectionString, w, [scenario.Table, second], stopWriters.Token))).ToArray();

            var rebuilders = new List<Rebuilder>();
            var subscriptions = new List<ReplicationSubscription>();
            for (int round = 0; round < Rounds; round++)
            {
                var rebuilder = new Rebuilder(round % 3 == 0 ? 7 : 0);
                // Whole publication, or one table only; chunks small enough that the copy spans many batches.
                SnapshotRequest request = round % 2 == 0
                    ? new SnapshotRequest { ChunkRows = 250 }
                    : SnapshotRequest.ForTables("public." + scenario.Table) with { ChunkRows = 400 };
                subscriptions.Add(await pump.SubscribeFromSnapshotAsync(rebuilder.OnChangesAsync, $"snapshot-{round}", request, cancellationToken: Ct));
                rebuilders.Add(rebuilder);
                await Wait.UntilAsync(() => rebuilder.SnapshotComplete, Timeout, () => $"round {round}'s snapshot complete");
            }

            await stopWriters.CancelAsync();
            await Task.WhenAll(writers);
            Lsn end = await scenario.ScalarAsync<string>($"insert into {second} values (-1, 'end') returning pg_current_wal_insert_lsn()::text") is { } text
                ? Lsn.Parse(text) : throw new InvalidOperationException("no LSN");
            foreach (Rebuilder r in rebuilders)
            {
                await Wait.UntilAsync(() => r.HighestCommit >= end, Timeout, () => $"a rebuilder at {end} (it is at {r.HighestCommit})");
            }

            Dictionary<string, Dictionary<long, string?>> primary = await ReadTablesAsync([scenario.Table, second]);
            for (int i = 0; i < rebuilders.Count; i++)
            {
                Rebuilder r = rebuilders[i];
                Assert.True(r.Violations.Count == 0, $"rebuilder {i}: {r.Violations.Count} violations: {string.Join("; ", r.Violations.Take(10))}");
                Assert.Equal(primary["public." + scenario.Table], r.Table("public." + scenario.Table));
                if (i % 2 == 0)
                {
                    Assert.Equal(primary["public." + second], r.Table("public." + second));
                }
                else
                {
                    // Only the first table was copied; the second is rebuilt from the stream alone: just what changed after the cut.
                    Assert.DoesNotContain(r.SnapshotTables, t => t == "public." + second);
                }

                Assert.True(r.SnapshotRows > 0, $"rebuilder {i} got no snapshot rows");
                Assert.True(r.StreamBatches > 0, $"rebuilder {i} got no stream batch");
            }

            // The plain subscriber kept streaming through every snapshot and rewind: it is at the end too.
            await Wait.UntilAsync(() => plain.Confirmed.Any(c => c.Batch.CommitLsn >= end), Timeout, () => "the plain subscriber at the end");
            // And the slot's position moves on once everyone has confirmed (no hold is left).
            await Wait.UntilAsync(async () => await scenario.ConfirmedFlushAsync() >= end, Timeout, () => "the slot's confirmed position past the end");
            TestContext.Current.TestOutputHelper?.WriteLine(
                $"{Rounds} snapshot subscribers, {pump.Status.ReconnectCount} reconnects; skipped as already copied per subscriber: {string.Join(", ", subscriptions.Select(s => s.Skipped))}");
            foreach (ReplicationSubscription s in subscriptions)
            {
                await s.DisposeAsync();
            }
        }
        finally
        {
            await scenario.ExecuteAsync($"drop table if exists {second}");
        }
    }

    [Fact]
    public async Task WhileASubscriberCopiesSlowly_OthersStream_AndTheSlotIsHeldAtItsCut_ThenItGetsEveryLaterTransaction()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(WhileASubscriberCopiesSlowly_OthersStream_AndTheSlotIsHeldAtItsCut_ThenItGetsEveryLaterTransaction));
        await scenario.InsertRangeAsync(1, 100, "seed");
        var log = new PumpLog();
        ReplicationPump pump = scenario.StartPump(logger: log);
        var plain = new BatchRecorder();
        pump.Subscribe(plain.OnChangesAsync);
        await scenario.WaitStreamingAsync(pump);

        var slow = new Rebuilder(0);
        slow.Hold();
        await using ReplicationSubscription subscription = await pump.SubscribeFromSnapshotAsync(slow.OnChangesAsync, "slow", new SnapshotRequest { ChunkRows = 10 }, cancellationToken: Ct);
        await Wait.UntilAsync(() => slow.Calls > 0, Timeout, () => "the first snapshot batch");
        Lsn hold = slow.ContinuesFrom;
        Assert.NotEqual(Lsn.Invalid, hold);

        Lsn last = default;
        for (int i = 101; i <= 150; i++)
        {
            last = await scenario.InsertRangeAsync(i, i, "later");
        }

        await Wait.UntilAsync(() => plain.ConfirmedRows.Any(r => r["id"] == "150"), Timeout, () => "the plain subscriber streaming while the other copies");
        Assert.True(pump.FlushedLsn <= hold, $"flushed {pump.FlushedLsn} passed the copying subscriber's hold {hold}");
        Assert.True(await scenario.ConfirmedFlushAsync() <= hold, "the slot's confirmed position passed the copying subscriber's hold");
        Assert.Equal(1, slow.Calls);   // one chunk in flight, the next not read

        slow.Release();
        await Wait.UntilAsync(() => slow.Table("public." + scenario.Table).ContainsKey(150), Timeout, () => $"the copying subscriber through the later transactions: status {pump.Status}, delivered {subscription.Delivered}, skipped {subscription.Skipped}, error {subscription.LastError}, snapshot rows {slow.SnapshotRows}, complete {slow.SnapshotComplete}, hold {pump.Backlog.LowestHold}; log: {string.Join(" | ", log.Lines)}");
        Assert.Empty(slow.Violations);
        Assert.Equal(100, slow.SnapshotRows);
        Assert.Equal(Enumerable.Range(1, 150).Select(i => (long)i), slow.Table("public." + scenario.Table).Keys.Order());
        await Wait.UntilAsync(async () => await scenario.ConfirmedFlushAsync() >= last, Timeout, () => "the slot moving on after the copy");
    }

    [Fact]
    public async Task SnapshotThenStream_OnTheSlotThePumpCreates_UnderWriters_ReadsTheExportedSnapshot_AndRebuildsThePrimary()
    {
        const int Rounds = 3;
        const int Writers = 3;
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(SnapshotThenStream_OnTheSlotThePumpCreates_UnderWriters_ReadsTheExportedSnapshot_AndRebuildsThePrimary));
        await scenario.ExecuteAsync($"insert into {scenario.Table} select g, 'seed ' || g from generate_series(1, 3000) g");
        var cuts = new List<string>();
        for (int round = 0; round < Rounds; round++)
        {
            using var stopWriters = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            // The slot is created while the writers commit: its consistent point falls between their transactions.
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => WriteAsync(fixture.PrimaryConnectionString, (round * Writers) + w, [scenario.Table], stopWriters.Token))).ToArray();
            var log = new PumpLog();
            ReplicationPump pump = scenario.StartPump(o => o.MaxBatchChanges = 200, logger: log);
            await pump.WaitForSlotAsync(Timeout, Ct);
            // Nothing is acknowledged without a subscriber, and the kept snapshot holds the slot: this is its consistent point.
            Lsn consistentPoint = await scenario.ConfirmedFlushAsync();

            // A bad request does not use up the exported snapshot.
            var exported = new Rebuilder(round % 2 == 0 ? 0 : 7);
            await Assert.ThrowsAsync<ArgumentException>(() => pump.SubscribeFromSnapshotAsync(exported.OnChangesAsync, "bad", SnapshotRequest.ForTables("public.no_such_table"), cancellationToken: Ct));
            ReplicationSubscription first = await pump.SubscribeFromSnapshotAsync(exported.OnChangesAsync, "exported", new SnapshotRequest { ChunkRows = 250 }, cancellationToken: Ct);
            await Wait.UntilAsync(() => exported.SnapshotComplete, Timeout, () => $"round {round}: the first subscriber's snapshot complete");
            Assert.True(exported.AtSlotCreation, $"round {round}: the slot's first snapshot subscriber did not read the snapshot exported with the slot; log: {string.Join(" | ", log.Lines)}");
            Assert.Equal(consistentPoint, exported.ContinuesFrom);
            cuts.Add(log.Lines.FirstOrDefault(l => l.StartsWith("2020 ", StringComparison.Ordinal)) ?? "?");

            // The next one gets a snapshot of its own, taken while the slot streams.
            var own = new Rebuilder(0);
            ReplicationSubscription second = await pump.SubscribeFromSnapshotAsync(own.OnChangesAsync, "own", new SnapshotRequest { ChunkRows = 400 }, cancellationToken: Ct);
            await Wait.UntilAsync(() => own.SnapshotComplete, Timeout, () => $"round {round}: the second subscriber's snapshot complete");
            Assert.False(own.AtSlotCreation, "the exported snapshot was used twice");
            await Wait.UntilAsync(() => own.StreamBatches >= 20, Timeout, () => $"round {round}: the second subscriber streaming");

            await stopWriters.CancelAsync();
            await Task.WhenAll(writers);
            Lsn end = Lsn.Parse((await scenario.ScalarAsync<string>($"insert into {scenario.Table} values ({-1 - round}, 'end') returning pg_current_wal_insert_lsn()::text"))!);
            foreach (Rebuilder r in new[] { exported, own })
            {
                await Wait.UntilAsync(() => r.HighestCommit >= end, Timeout, () => $"round {round}: a rebuilder at {end} (it is at {r.HighestCommit})");
            }

            Dictionary<long, string?> primary = (await ReadTablesAsync([scenario.Table]))["public." + scenario.Table];
            foreach ((string name, Rebuilder r) in new[] { ("exported", exported), ("own", own) })
            {
                Assert.True(r.Violations.Count == 0, $"round {round}, {name}: {r.Violations.Count} violations: {string.Join("; ", r.Violations.Take(10))}");
                Assert.Equal(primary, r.Table("public." + scenario.Table));
                Assert.True(r.StreamBatches > 0, $"round {round}: {name} got no stream batch");
            }

            // In the exported snapshot exactly the transactions before the consistent point are visible: the stream from
            // there holds none of them, so the cut's filter had nothing to skip.
            Assert.Equal(0, first.SkippedAsCopied);
            Assert.Contains(log.Lines, l => l.StartsWith("2026 ", StringComparison.Ordinal) && l.Contains("taken by the first snapshot subscriber", StringComparison.Ordinal));
            // The kept snapshot's transaction is gone, and the slot moves on.
            Assert.Equal(0L, await scenario.ScalarAsync<long>(KeptSnapshots(scenario)));
            await Wait.UntilAsync(async () => await scenario.ConfirmedFlushAsync() >= end, Timeout, () => $"round {round}: the slot's confirmed position past the end");
            TestContext.Current.TestOutputHelper?.WriteLine($"round {round} at {DateTime.UtcNow:HH:mm:ss.fff}: consistent point {consistentPoint}; skipped as copied by the second subscriber's cut: {second.SkippedAsCopied}; reconnects {pump.Status.ReconnectCount}");
            await first.DisposeAsync();
            await second.DisposeAsync();
            await pump.DisposeAsync();
            await scenario.DropSlotAsync();
        }

        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(Environment.NewLine, cuts));
    }

    [Fact]
    public async Task TheExportedSnapshot_IsReleased_AfterItsLifetime_OrWhenTheFirstSubscriberAsksForNone_AndIsNotTakenWhenTurnedOff()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(TheExportedSnapshot_IsReleased_AfterItsLifetime_OrWhenTheFirstSubscriberAsksForNone_AndIsNotTakenWhenTurnedOff));
        await scenario.InsertRangeAsync(1, 50, "seed");
        string holders = KeptSnapshots(scenario);

        // 1. Nobody comes within the lifetime: released, and a later snapshot subscriber takes its own.
        var log = new PumpLog();
        ReplicationPump pump = scenario.StartPump(o => o.CreatedSlotSnapshotLifetime = TimeSpan.FromSeconds(1), logger: log);
        await pump.WaitForSlotAsync(Timeout, Ct);
        Assert.Contains(log.Lines, l => l.StartsWith("2024 ", StringComparison.Ordinal));
        await Wait.UntilAsync(() => log.Lines.Any(l => l.StartsWith("2026 ", StringComparison.Ordinal)), Timeout, () => "the kept snapshot released after its lifetime");
        Assert.Contains("no snapshot subscriber came within", log.Lines.Single(l => l.StartsWith("2026 ", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Equal(0L, await scenario.ScalarAsync<long>(holders));
        Assert.Null(pump.Backlog.LowestHold);
        var late = new Rebuilder(0);
        await using (ReplicationSubscription s = await pump.SubscribeFromSnapshotAsync(late.OnChangesAsync, "late", new SnapshotRequest(), cancellationToken: Ct))
        {
            await Wait.UntilAsync(() => late.SnapshotComplete, Timeout, () => "the late snapshot complete");
            Assert.False(late.AtSlotCreation);
            Assert.Equal(50, late.SnapshotRows);
        }

        await pump.DisposeAsync();
        await scenario.DropSlotAsync();

        // 2. The first subscriber wants the stream alone: released at once (well within the default minute), and the
        // slot moves on with that subscriber's confirmations.
        log = new PumpLog();
        pump = scenario.StartPump(logger: log);
        await pump.WaitForSlotAsync(Timeout, Ct);
        Assert.Equal(1L, await scenario.ScalarAsync<long>(holders));
        var plain = new BatchRecorder();
        pump.Subscribe(plain.OnChangesAsync);
        Lsn written = await scenario.InsertRangeAsync(51, 60, "after");
        await Wait.UntilAsync(async () => await scenario.ConfirmedFlushAsync() >= written, TimeSpan.FromSeconds(20), () => $"the slot moving on with the plain subscriber (hold {pump.Backlog.LowestHold})");
        Assert.Contains(log.Lines, l => l.StartsWith("2026 ", StringComparison.Ordinal) && l.Contains("asked for no snapshot", StringComparison.Ordinal));
        Assert.Equal(0L, await scenario.ScalarAsync<long>(holders));
        await pump.DisposeAsync();
        await scenario.DropSlotAsync();

        // 3. Turned off: the slot is created without exporting one.
        log = new PumpLog();
        pump = scenario.StartPump(o => o.CreatedSlotSnapshotLifetime = TimeSpan.Zero, logger: log);
        await pump.WaitForSlotAsync(Timeout, Ct);
        var off = new Rebuilder(0);
        await using (ReplicationSubscription s = await pump.SubscribeFromSnapshotAsync(off.OnChangesAsync, "off", new SnapshotRequest(), cancellationToken: Ct))
        {
            await Wait.UntilAsync(() => off.SnapshotComplete, Timeout, () => "the snapshot complete");
            Assert.False(off.AtSlotCreation);
            Assert.Equal(60, off.SnapshotRows);
        }

        Assert.DoesNotContain(log.Lines, l => l.StartsWith("2024 ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task APublicationsColumnListAndRowFilter_ShapeTheCopy_AsTheyShapeTheStream()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(APublicationsColumnListAndRowFilter_ShapeTheCopy_AsTheyShapeTheStream), "id bigint primary key, payload text, secret text");
        await scenario.ExecuteAsync($"insert into {scenario.Table} select g, 'p' || g, 's' || g from generate_series(1, 100) g");
        // PostgreSQL 15+: only two of the three columns, only even ids.
        await scenario.ExecuteAsync($"create publication {scenario.Publication} for table {scenario.Table} (id, payload) where (id % 2 = 0)");
        ReplicationPump pump = scenario.StartPump();
        await scenario.WaitStreamingAsync(pump);

        var batches = new System.Collections.Concurrent.ConcurrentQueue<ChangeBatch>();
        await using ReplicationSubscription subscription = await pump.SubscribeFromSnapshotAsync(
            (batch, _) => { batches.Enqueue(batch); return Task.CompletedTask; }, "filtered", new SnapshotRequest { ChunkRows = 16 }, cancellationToken: Ct);
        await Wait.UntilAsync(() => batches.Any(b => b.Snapshot?.IsComplete == true), Timeout, () => "the snapshot complete");
        await scenario.ExecuteAsync($"insert into {scenario.Table} values (101, 'p101', 's101'), (102, 'p102', 's102')");
        await scenario.ExecuteAsync($"update {scenario.Table} set payload = 'changed', secret = 'changed' where id in (3, 4)");
        await Wait.UntilAsync(() => batches.Count(b => b.Snapshot is null) >= 2, Timeout, () => "the stream's two transactions");

        RowChange[] copied = [.. batches.Where(b => b.Snapshot is not null).SelectMany(b => b.Changes)];
        RowChange[] streamed = [.. batches.Where(b => b.Snapshot is null).SelectMany(b => b.Changes)];
        Assert.Equal(Enumerable.Range(1, 50).Select(i => 2L * i), copied.Select(c => long.Parse(c["id"]!, CultureInfo.InvariantCulture)).Order());
        Assert.All(copied, c => Assert.Equal("p" + c["id"], c["payload"]));
        // The copy's relation is the stream's: the same columns, in the same order, with the same key.
        Assert.Equal(["id", "payload"], copied[0].Relation.Columns.Select(c => c.Name));
        Assert.Equal(streamed[0].Relation.Columns.Select(c => (c.Name, c.IsKey)), copied[0].Relation.Columns.Select(c => (c.Name, c.IsKey)));
        Assert.Equal(["102", "4"], streamed.Select(c => c["id"]));
        Assert.Equal(0, subscription.SkippedAsCopied);
    }

    [Fact]
    public async Task ASnapshotOfATableOutsideThePublication_OrOfBadSize_IsRefused_AndNothingIsSubscribed()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(ASnapshotOfATableOutsideThePublication_OrOfBadSize_IsRefused_AndNothingIsSubscribed));
        (ReplicationPump pump, _) = await scenario.StartStreamingAsync();
        int before = pump.Status.Subscribers;
        var rebuilder = new Rebuilder(0);

        var outside = await Assert.ThrowsAsync<ArgumentException>(() => pump.SubscribeFromSnapshotAsync(rebuilder.OnChangesAsync, "x", SnapshotRequest.ForTables("pg_catalog.pg_authid", "public." + scenario.Table, "nodot"), cancellationToken: Ct));
        Assert.Contains("\"pg_catalog.pg_authid\" is not in publication", outside.Message, StringComparison.Ordinal);
        Assert.Contains("\"nodot\" is not schema-qualified", outside.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("public." + scenario.Table + "\" is not", outside.Message, StringComparison.Ordinal);

        var size = await Assert.ThrowsAsync<ArgumentException>(() => pump.SubscribeFromSnapshotAsync(rebuilder.OnChangesAsync, "x", new SnapshotRequest { ChunkRows = 0 }, cancellationToken: Ct));
        Assert.Contains("ChunkRows must be between 1 and 100000", size.Message, StringComparison.Ordinal);
        Assert.Equal(before, pump.Status.Subscribers);
        Assert.Null(pump.Backlog.LowestHold);
        Assert.Equal(0, rebuilder.Calls);
    }

    /// <summary>
    /// Counts the pump's sessions keeping a slot's exported snapshot: in a transaction whose last statement exported it
    /// again (a copy's own transaction exports nothing, and the pump's other connections run no such statement).
    /// </summary>
    private static string KeptSnapshots(ReplicationScenario scenario) =>
        $"select count(*) from pg_stat_activity where state = 'idle in transaction' and application_name = 'orleanslsn-pump-{scenario.Slot}' and query like '%pg_export_snapshot()%'";

    private sealed class PumpLog : Microsoft.Extensions.Logging.ILogger<ReplicationPump>
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => [.. _lines];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue(eventId.Id + " " + formatter(state, exception) + (exception is null ? "" : " " + exception.GetType().Name));
    }

    private static async Task WriteAsync(string connectionString, int writer, string[] tables, CancellationToken stop)
    {
        var random = new Random(writer * 7919 + 1);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(CancellationToken.None);
        long next = 1_000_000L * (writer + 1);
        while (!stop.IsCancellationRequested)
        {
            string table = tables[random.Next(tables.Length)];
            int kind = random.Next(100);
            await using NpgsqlTransaction tx = await connection.BeginTransactionAsync(CancellationToken.None);
            string sql = kind switch
            {
                < 35 => $"insert into {table} values ({next++}, 'w{writer} {next}')",
                < 60 => $"update {table} set payload = 'u{writer} ' || random()::text where id = (select id from {table} where id % 7 = {random.Next(7)} order by id limit 1 offset {random.Next(50)})",
                < 75 => $"delete from {table} where id = (select id from {table} where id % 5 = {random.Next(5)} order by id desc limit 1 offset {random.Next(30)})",
                < 80 => $"insert into {table} select g, 'big{writer}' from generate_series({next}, {next + 449}) g",
                _ => $"insert into {table} values ({next++}, 'w{writer} two'); update {table} set payload = payload || '+' where id = (select max(id) from {table})",
            };
            if (kind is >= 75 and < 80)
            {
                next += 450;
            }

            await using (var command = new NpgsqlCommand(sql, connection, tx))
            {
                await command.ExecuteNonQueryAsync(CancellationToken.None);
            }

            if (random.Next(100) < 12)
            {
                await tx.RollbackAsync(CancellationToken.None);
            }
            else
            {
                await tx.CommitAsync(CancellationToken.None);
            }
        }
    }

    private async Task<Dictionary<string, Dictionary<long, string?>>> ReadTablesAsync(string[] tables)
    {
        var result = new Dictionary<string, Dictionary<long, string?>>(StringComparer.Ordinal);
        await using var connection = new NpgsqlConnection(fixture.PrimaryConnectionString);
        await connection.OpenAsync(Ct);
        foreach (string table in tables)
        {
            var rows = new Dictionary<long, string?>();
            await using var command = new NpgsqlCommand($"select id, payload from {table}", connection);
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(Ct);
            while (await reader.ReadAsync(Ct))
            {
                rows[reader.GetInt64(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
            }

            result["public." + table] = rows;
        }

        return result;
    }

    /// <summary>
    /// Rebuilds tables <c>(id bigint, payload text)</c> from a snapshot and the stream after it, strictly: a streamed
    /// insert of a key it has, or an update or delete of a key it lacks, is a violation (a transaction in both the copy
    /// and the stream, or in neither). Batches delivered again (same commit LSN and fragment) are ignored, as the
    /// contract tells consumers to. Changes of a table the snapshot did not copy are not applied.
    /// </summary>
    private sealed class Rebuilder(int failEvery)
    {
        private readonly object _lock = new();
        private readonly Dictionary<string, Dictionary<long, string?>> _tables = new(StringComparer.Ordinal);
        private readonly HashSet<(Lsn, int)> _seen = new();
        private readonly List<string> _violations = new();
        private readonly HashSet<string> _snapshotTables = new(StringComparer.Ordinal);
        private TaskCompletionSource? _gate;
        private long _calls;
        private int _failed;

        public bool SnapshotComplete { get; private set; }

        public Lsn ContinuesFrom { get; private set; }

        /// <summary>The snapshot parts' <see cref="SnapshotPart.AtSlotCreation"/> (all must agree), once one came.</summary>
        public bool? AtSlotCreation { get; private set; }

        public Lsn HighestCommit { get; private set; }

        public long SnapshotRows { get; private set; }

        public long StreamBatches { get; private set; }

        public long Calls => Interlocked.Read(ref _calls);

        public IReadOnlyList<string> Violations
        {
            get
            {
                lock (_lock)
                {
                    return [.. _violations];
                }
            }
        }

        public IReadOnlyCollection<string> SnapshotTables
        {
            get
            {
                lock (_lock)
                {
                    return [.. _snapshotTables];
                }
            }
        }

        public void Hold() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate?.TrySetResult();

        public Dictionary<long, string?> Table(string name)
        {
            lock (_lock)
            {
                return _tables.TryGetValue(name, out Dictionary<long, string?>? rows) ? new(rows) : [];
            }
        }

        public async Task OnChangesAsync(ChangeBatch batch, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            if (batch.Snapshot is { } first && ContinuesFrom == Lsn.Invalid)
            {
                ContinuesFrom = first.ContinuesFrom;
            }

            if (_gate is { } gate)
            {
                await gate.Task.WaitAsync(cancellationToken);
            }

            // Now and then a delivery fails: the same batch must come again, and be applied once.
            if (failEvery > 0 && Interlocked.Increment(ref _failed) % failEvery == 0)
            {
                throw new InvalidOperationException("a subscriber failure (test)");
            }

            lock (_lock)
            {
                if (batch.Snapshot is { } part)
                {
                    ApplySnapshot(batch, part);
                    return;
                }

                if (!SnapshotComplete)
                {
                    _violations.Add($"stream batch {batch.CommitLsn}#{batch.Fragment} before the snapshot completed");
                }

                if (!_seen.Add((batch.CommitLsn, batch.Fragment)))
                {
                    return;
                }

                StreamBatches++;
                foreach (RowChange change in batch.Changes)
                {
                    if (_snapshotTables.Contains(change.Relation.QualifiedName))
                    {
                        Apply(batch, change);
                    }
                }

                if (batch.CommitLsn > HighestCommit)
                {
                    HighestCommit = batch.CommitLsn;
                }
            }
        }

        private void ApplySnapshot(ChangeBatch batch, SnapshotPart part)
        {
            ContinuesFrom = part.ContinuesFrom;
            if (AtSlotCreation is { } earlier && earlier != part.AtSlotCreation)
            {
                _violations.Add($"batch {batch.Sequence} says AtSlotCreation {part.AtSlotCreation}, an earlier one {earlier}");
            }

            AtSlotCreation = part.AtSlotCreation;
            if (part.IsComplete)
            {
                if (part.TotalRows != SnapshotRows)
                {
                    _violations.Add($"completion says {part.TotalRows} rows, {SnapshotRows} came");
                }

                SnapshotComplete = true;
                return;
            }

            _snapshotTables.Add(part.Table!);
            Dictionary<long, string?> rows = Rows(part.Table!);
            foreach (RowChange row in batch.Changes)
            {
                long id = long.Parse(row["id"]!, CultureInfo.InvariantCulture);
                if (!rows.TryAdd(id, row["payload"]))
                {
                    _violations.Add($"snapshot row {part.Table} {id} twice");
                }

                SnapshotRows++;
            }
        }

        private void Apply(ChangeBatch batch, RowChange change)
        {
            Dictionary<long, string?> rows = Rows(change.Relation.QualifiedName);
            long id = long.Parse((change.NewValues ?? change.OldValues)![change.Relation.IndexOf("id")]!, CultureInfo.InvariantCulture);
            switch (change.Kind)
            {
                case ChangeKind.Insert when !rows.TryAdd(id, change["payload"]):
                    _violations.Add($"insert of {change.Relation.QualifiedName} {id} it already has (xid {batch.Xid}, {batch.CommitLsn})");
                    break;
                case ChangeKind.Update when !rows.ContainsKey(id):
                    _violations.Add($"update of {change.Relation.QualifiedName} {id} it lacks (xid {batch.Xid}, {batch.CommitLsn})");
                    break;
                case ChangeKind.Update:
                    rows[id] = change["payload"];
                    break;
                case ChangeKind.Delete when !rows.Remove(id):
                    _violations.Add($"delete of {change.Relation.QualifiedName} {id} it lacks (xid {batch.Xid}, {batch.CommitLsn})");
                    break;
            }
        }

        private Dictionary<long, string?> Rows(string table)
        {
            if (!_tables.TryGetValue(table, out Dictionary<long, string?>? rows))
            {
                rows = [];
                _tables[table] = rows;
            }

            return rows;
        }
    }
}
