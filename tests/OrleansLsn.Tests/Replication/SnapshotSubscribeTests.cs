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
