using System.Globalization;
using Npgsql;
using OrleansLsn.Replication.Snapshot;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// <see cref="TableSnapshotReader"/> on a real primary: the copy is exactly the snapshot it reports (every committed
/// transaction visible in it has its effects in the rows, every other one has none), chunks are bounded, names are checked.
/// </summary>
public sealed class TableSnapshotReaderTests(PostgresFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Snapshot_UnderConcurrentWriters_RowsAreExactlyTheVisibleCommittedTransactions()
    {
        const int Writers = 4;
        const int SeedRowsPerWriter = 10;
        const int Rounds = 8;
        string table = await CreateTableAsync(nameof(Snapshot_UnderConcurrentWriters_RowsAreExactlyTheVisibleCommittedTransactions),
            "marker text primary key, writer int not null, version int not null, note text");
        try
        {
            await using NpgsqlDataSource dataSource = NpgsqlDataSource.Create(fixture.PrimaryConnectionString);
            var seeds = new Dictionary<string, RowState>[Writers];
            for (int w = 0; w < Writers; w++)
            {
                seeds[w] = [];
                for (int k = 0; k < SeedRowsPerWriter; k++)
                {
                    seeds[w][$"w{w}-seed-{k}"] = new RowState(1, k % 3 == 0 ? null : $"seed {k}");
                }
            }

            await using (NpgsqlConnection seedConnection = await dataSource.OpenConnectionAsync(Ct))
            {
                for (int w = 0; w < Writers; w++)
                {
                    foreach ((string marker, RowState state) in seeds[w])
                    {
                        await ExecuteAsync(seedConnection, $"insert into {table} values ($1, $2, 1, $3)", marker, w, (object?)state.Note ?? DBNull.Value);
                    }
                }
            }

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var logs = new List<Committed>[Writers];
            var rolledBack = new List<string>[Writers];
            long committedCount = 0;
            var writers = new Task[Writers];
            for (int w = 0; w < Writers; w++)
            {
                int writer = w;
                logs[w] = [];
                rolledBack[w] = [];
                writers[w] = Task.Run(() => WriteAsync(dataSource, table, writer, seeds[writer], logs[writer], rolledBack[writer], () => Interlocked.Increment(ref committedCount), stop.Token), Ct);
            }

            var rounds = new List<(PgSnapshot Snapshot, Dictionary<string, (int Writer, RowState State)> Rows, List<string> Consistent, string ImportedSnapshot)>();
            try
            {
                for (int round = 0; round < Rounds; round++)
                {
                    long before = Interlocked.Read(ref committedCount);
                    await Wait.UntilAsync(() => Interlocked.Read(ref committedCount) >= before + 25 || writers.Any(t => t.IsCompleted), Timeout,
                        () => $"round {round}: writers committing (at {Interlocked.Read(ref committedCount)})", Ct);
                    Assert.DoesNotContain(writers, t => t.IsFaulted);

                    PgSnapshot? snapshot = null;
                    var rows = new Dictionary<string, (int, RowState)>(StringComparer.Ordinal);
                    List<string>? consistent = null;
                    string? imported = null;
                    await foreach (SnapshotChunk chunk in TableSnapshotReader.ReadAsync(dataSource, [table], chunkSize: 7, exportSnapshot: true, Ct))
                    {
                        Assert.True(snapshot is null || ReferenceEquals(snapshot, chunk.Snapshot));
                        snapshot = chunk.Snapshot;
                        Assert.Equal(["marker", "writer", "version", "note"], chunk.Relation.Columns.Select(c => c.Name));
                        Assert.Equal([true, false, false, false], chunk.Relation.Columns.Select(c => c.IsKey));
                        Assert.InRange(chunk.Rows.Count, 1, 7);
                        foreach (IReadOnlyList<string?> row in chunk.Rows)
                        {
                            Assert.True(rows.TryAdd(row[0]!, (int.Parse(row[1]!, CultureInfo.InvariantCulture), new RowState(int.Parse(row[2]!, CultureInfo.InvariantCulture), row[3]))),
                                $"row {row[0]} read twice");
                        }

                        // While the read is under way (the writers still committing), read the same snapshot elsewhere.
                        if (consistent is null)
                        {
                            (consistent, imported) = await ReadInImportedSnapshotAsync(dataSource, table, chunk.ExportedSnapshot!);
                        }
                    }

                    Assert.NotNull(snapshot);
                    Assert.Equal(snapshot.ToString(), imported);
                    rounds.Add((snapshot, rows, consistent!, imported!));
                }
            }
            finally
            {
                await stop.CancelAsync();
                await Task.WhenAll(writers.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
            }

            foreach (Task t in writers)
            {
                await t;
            }

            int invisibleInRange = 0;
            for (int r = 0; r < rounds.Count; r++)
            {
                (PgSnapshot snapshot, Dictionary<string, (int Writer, RowState State)> rows, List<string> consistent, _) = rounds[r];
                for (int w = 0; w < Writers; w++)
                {
                    // Each writer's transactions run one after another, so those visible must be a prefix of its log;
                    // the expected rows are the seed with exactly the visible ones applied.
                    var expected = new Dictionary<string, RowState>(seeds[w], StringComparer.Ordinal);
                    bool sawInvisible = false;
                    foreach (Committed c in logs[w])
                    {
                        bool visible = snapshot.IsVisible(c.Xid8);
                        if (!visible && c.Xid8 >= snapshot.Xmin && c.Xid8 < snapshot.Xmax)
                        {
                            invisibleInRange++;
                        }

                        Assert.False(visible && sawInvisible, $"round {r}, snapshot {snapshot}: writer {w}'s transaction {c} is visible after an invisible one");
                        sawInvisible |= !visible;
                        if (visible)
                        {
                            c.Apply(expected);
                        }
                    }

                    Dictionary<string, RowState> actual = rows.Where(kv => kv.Value.Writer == w).ToDictionary(kv => kv.Key, kv => kv.Value.State, StringComparer.Ordinal);
                    string Describe() =>
                        $"round {r}, snapshot {snapshot}, writer {w}: missing or different " +
                        string.Join(", ", expected.Where(kv => !actual.TryGetValue(kv.Key, out RowState? a) || a != kv.Value).Select(kv => $"{kv.Key}={kv.Value}")) +
                        "; unexpected " + string.Join(", ", actual.Where(kv => !expected.TryGetValue(kv.Key, out RowState? e) || e != kv.Value).Select(kv => $"{kv.Key}={kv.Value}")) +
                        "; log " + string.Join(" ", logs[w].Select(c => $"{c}{(snapshot.IsVisible(c.Xid8) ? "+" : "-")}"));
                    Assert.True(expected.Count == actual.Count && expected.All(kv => actual.TryGetValue(kv.Key, out RowState? a) && a == kv.Value), Describe());
                    Assert.DoesNotContain(rolledBack[w], rows.ContainsKey);
                }

                // And the rows are what any SELECT in that snapshot gives.
                Assert.Equal(consistent, rows.Select(kv => Render(kv.Key, kv.Value.Writer, kv.Value.State)).Order(StringComparer.Ordinal));
            }

            TestContext.Current.SendDiagnosticMessage(
                $"{rounds.Count} snapshots over {logs.Sum(l => l.Count)} committed and {rolledBack.Sum(l => l.Count)} rolled-back transactions; " +
                $"{invisibleInRange} committed transactions were in [xmin, xmax) yet invisible (in xip); xip sizes {string.Join(",", rounds.Select(x => x.Snapshot.InProgress.Count))}");
            Assert.All(logs, l => Assert.True(l.Count > 0));
        }
        finally
        {
            await ExecuteOnceAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task Snapshot_HundredThousandRows_ChunkSize1000_Yields100ChunksOfAtMost1000_EveryRowOnce()
    {
        string table = await CreateTableAsync(nameof(Snapshot_HundredThousandRows_ChunkSize1000_Yields100ChunksOfAtMost1000_EveryRowOnce), "id bigint primary key, payload text");
        try
        {
            await ExecuteOnceAsync($"insert into {table} select i, 'row ' || i from generate_series(1, 100000) i");
            await using NpgsqlDataSource dataSource = NpgsqlDataSource.Create(fixture.PrimaryConnectionString);
            int chunks = 0;
            var ids = new HashSet<long>();
            await foreach (SnapshotChunk chunk in TableSnapshotReader.ReadAsync(dataSource, [table], chunkSize: 1000, cancellationToken: Ct))
            {
                chunks++;
                Assert.InRange(chunk.Rows.Count, 1, 1000);
                foreach (IReadOnlyList<string?> row in chunk.Rows)
                {
                    long id = long.Parse(row[0]!, CultureInfo.InvariantCulture);
                    Assert.True(ids.Add(id), $"row {id} read twice");
                    Assert.Equal("row " + row[0], row[1]);
                }
            }

            Assert.Equal(100, chunks);
            Assert.Equal(100000, ids.Count);
            Assert.Equal(1, ids.Min());
            Assert.Equal(100000, ids.Max());
        }
        finally
        {
            await ExecuteOnceAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task Snapshot_TextValues_AreTheOutputFunctions_EmptyTableYieldsOneEmptyChunk_TablesInOrder()
    {
        string typed = await CreateTableAsync("snapshot_text_typed",
            "id int primary key, flag boolean, at timestamptz, amount numeric(10,2), tags text[], doc jsonb, blob bytea, gone int, twice int generated always as (id * 2) stored");
        string empty = await CreateTableAsync("snapshot_text_empty", "id int primary key");
        try
        {
            await ExecuteOnceAsync($"alter table {typed} drop column gone");
            await ExecuteOnceAsync($"insert into {typed} values (1, true, '2026-01-02 03:04:05+00', 12.5, '{{a,\"b c\"}}', '{{\"k\": [1, 2]}}', '\\x00ff'), (2, null, null, null, null, null, null)");
            await using NpgsqlDataSource dataSource = NpgsqlDataSource.Create(fixture.PrimaryConnectionString);
            var chunks = new List<SnapshotChunk>();
            await foreach (SnapshotChunk chunk in TableSnapshotReader.ReadAsync(dataSource, [empty, typed], chunkSize: 10, cancellationToken: Ct))
            {
                chunks.Add(chunk);
            }

            Assert.Equal(2, chunks.Count);
            Assert.Equal(empty, chunks[0].Relation.QualifiedName);
            Assert.Empty(chunks[0].Rows);
            ChangeRelation relation = chunks[1].Relation;
            Assert.Equal(["id", "flag", "at", "amount", "tags", "doc", "blob"], relation.Columns.Select(c => c.Name));
            Assert.Equal(await ScalarAsync<uint>($"select '{typed}'::regclass::oid"), relation.RelationId);
            Assert.Equal(16U, relation.Columns[1].TypeId);
            string expectedAt = await ScalarAsync<string>("select '2026-01-02 03:04:05+00'::timestamptz::text");
            IReadOnlyList<string?> first = chunks[1].Rows.Single(r => r[0] == "1");
            Assert.Equal(["1", "t", expectedAt, "12.50", "{a,\"b c\"}", "{\"k\": [1, 2]}", "\\x00ff"], first);
            Assert.All(chunks[1].Rows.Single(r => r[0] == "2").Skip(1), Assert.Null);
        }
        finally
        {
            await ExecuteOnceAsync($"drop table if exists {typed}");
            await ExecuteOnceAsync($"drop table if exists {empty}");
        }
    }

    [Theory]
    [InlineData("public.a;drop", "has ';'")]
    [InlineData("a.b.c", "more than two parts")]
    [InlineData("unqualified", "not schema-qualified")]
    [InlineData("", "must not be empty")]
    public async Task Snapshot_InvalidTableName_IsRefusedBeforeConnecting(string name, string problem)
    {
        // Nothing listens there: the name must be refused before any connection is tried.
        await using NpgsqlDataSource dataSource = NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Timeout=1");
        ArgumentException e = await Assert.ThrowsAsync<ArgumentException>(async () =>
        {
            await foreach (SnapshotChunk _ in TableSnapshotReader.ReadAsync(dataSource, [name], 10, cancellationToken: Ct))
            {
            }
        });
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Snapshot_UnknownTablesAndViews_AreRefusedNamingEachOne()
    {
        string table = await CreateTableAsync("snapshot_unknown_known", "id int primary key");
        string view = table + "_v";
        try
        {
            await ExecuteOnceAsync($"create view {view} as select * from {table}");
            await using NpgsqlDataSource dataSource = NpgsqlDataSource.Create(fixture.PrimaryConnectionString);
            ArgumentException e = await Assert.ThrowsAsync<ArgumentException>(async () =>
            {
                await foreach (SnapshotChunk _ in TableSnapshotReader.ReadAsync(dataSource, [table, "public.snapshot_no_such_table", view, "no_such_schema.t"], 10, cancellationToken: Ct))
                {
                }
            });
            Assert.Contains("public.snapshot_no_such_table does not exist", e.Message, StringComparison.Ordinal);
            Assert.Contains("no_such_schema.t does not exist", e.Message, StringComparison.Ordinal);
            Assert.Contains($"{view} is not a table (relkind 'v')", e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain($"{table} does", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            await ExecuteOnceAsync($"drop view if exists {view}");
            await ExecuteOnceAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task Snapshot_AbandonedOrCancelled_EndsTheTransaction()
    {
        string table = await CreateTableAsync("snapshot_abandoned", "id int primary key");
        try
        {
            await ExecuteOnceAsync($"insert into {table} select generate_series(1, 50)");
            await using NpgsqlConnection connection = new(fixture.PrimaryConnectionString);
            await connection.OpenAsync(Ct);

            await foreach (SnapshotChunk _ in TableSnapshotReader.ReadAsync(connection, [table], 10, cancellationToken: Ct))
            {
                break;
            }

            await AssertOutsideTheSnapshotAsync(connection, table, 51);

            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                await foreach (SnapshotChunk _ in TableSnapshotReader.ReadAsync(connection, [table], 10, cancellationToken: cancel.Token))
                {
                    await cancel.CancelAsync();
                }
            });

            await AssertOutsideTheSnapshotAsync(connection, table, 52);
        }
        finally
        {
            await ExecuteOnceAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task Snapshot_OfABigTableAbandonedAfterItsFirstChunk_EndsTheCopyAndTheTransaction_TheConnectionStaysUsable()
    {
        string table = await CreateTableAsync("snapshot_abandoned_big", "id int primary key, note text");
        try
        {
            await ExecuteOnceAsync($"insert into {table} select g, repeat('n', 200) from generate_series(1, 200000) g");
            await using NpgsqlConnection connection = new(fixture.PrimaryConnectionString);
            await connection.OpenAsync(Ct);
            int chunks = 0;
            await foreach (SnapshotChunk chunk in TableSnapshotReader.ReadAsync(connection, [table], 100, cancellationToken: Ct))
            {
                Assert.Equal(100, chunk.Rows.Count);
                chunks++;
                break;
            }

            Assert.Equal(1, chunks);
            await AssertOutsideTheSnapshotAsync(connection, table, 200001);
        }
        finally
        {
            await ExecuteOnceAsync($"drop table if exists {table}");
        }
    }

    [Fact]
    public async Task Snapshot_ReadSlowly_OnASessionWithAShortStatementTimeout_IsNotCutShort()
    {
        string table = await CreateTableAsync("snapshot_slow_timeout", "id int primary key, note text");
        try
        {
            // More than the socket buffers hold, so the server's COPY is still running while the consumer pauses.
            await ExecuteOnceAsync($"insert into {table} select g, repeat('n', 200) from generate_series(1, 200000) g");
            await using NpgsqlConnection connection = new(fixture.PrimaryConnectionString);
            await connection.OpenAsync(Ct);
            await using (var timeout = new NpgsqlCommand("SET statement_timeout = '300ms'", connection))
            {
                await timeout.ExecuteNonQueryAsync(Ct);
            }

            long rows = 0;
            await foreach (SnapshotChunk chunk in TableSnapshotReader.ReadAsync(connection, [table], 1000, cancellationToken: Ct))
            {
                if (rows == 0)
                {
                    // The consumer is slow: a pause longer than the session's statement timeout.
                    await Task.Delay(TimeSpan.FromSeconds(1.5), Ct);
                }

                rows += chunk.Rows.Count;
            }

            Assert.Equal(200000, rows);
            await using var after = new NpgsqlCommand("SHOW statement_timeout", connection);
            Assert.Equal("300ms", await after.ExecuteScalarAsync(Ct));
        }
        finally
        {
            await ExecuteOnceAsync($"drop table if exists {table}");
        }
    }

    [Theory]
    [InlineData("1\tabc\t\\N", new[] { "1", "abc", null })]
    [InlineData("\\N\t\t", new[] { null, "", "" })]
    [InlineData("a\\tb\t\\\\\t\\n\\r\\b\\f\\v", new[] { "a\tb", "\\", "\n\r\b\f\v" })]
    [InlineData("x\\Ny\t\\q\t\\", new[] { "xNy", "q", "\\" })]
    public void CopyTextRow_IsUnescaped_AsPostgreSqlWroteIt(string line, string?[] expected) =>
        Assert.Equal(expected, TableSnapshotReader.ParseCopyTextRow(line, expected.Length));

    [Theory]
    [InlineData("a\tb", 3)]
    [InlineData("a\tb\tc", 2)]
    public void CopyTextRow_OfTheWrongWidth_IsAFormatError(string line, int columns)
    {
        var error = Assert.Throws<FormatException>(() => TableSnapshotReader.ParseCopyTextRow(line, columns));
        Assert.Contains("COPY sent a row of", error.Message, StringComparison.Ordinal);
    }

    // A row committed elsewhere now is seen by the connection: it is in no snapshot-holding transaction any more.
    private async Task AssertOutsideTheSnapshotAsync(NpgsqlConnection connection, string table, int id)
    {
        await ExecuteOnceAsync($"insert into {table} values ({id})");
        await using var command = new NpgsqlCommand($"select count(*) from {table} where id = {id}", connection);
        Assert.Equal(1L, await command.ExecuteScalarAsync(Ct));
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(Ct);
        await transaction.RollbackAsync(Ct);
    }

    private static async Task WriteAsync(
        NpgsqlDataSource dataSource, string table, int writer, Dictionary<string, RowState> seed,
        List<Committed> log, List<string> rolledBack, Action onCommit, CancellationToken stop)
    {
        var random = new Random(writer * 7919);
        var live = new Dictionary<string, RowState>(seed, StringComparer.Ordinal);
        await using NpgsqlConnection connection = await dataSource.OpenConnectionAsync(CancellationToken.None);
        for (int i = 0; !stop.IsCancellationRequested && i < 5000; i++)
        {
            await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(CancellationToken.None);
            await using var xidCommand = new NpgsqlCommand("select pg_current_xact_id()::text", connection, transaction);
            ulong xid8 = ulong.Parse((string)(await xidCommand.ExecuteScalarAsync(CancellationToken.None))!, CultureInfo.InvariantCulture);
            bool rollback = random.Next(100) < 15;
            int dice = random.Next(100);
            Committed change;
            if (dice < 45 || live.Count < 4)
            {
                string marker = rollback ? $"w{writer}-rb-{i}" : $"w{writer}-{i}";
                string? note = (i % 5) switch { 0 => null, 1 => "it's \"quoted\"", 2 => "ünïcødé ✓", _ => $"note {i}" };
                await ExecuteAsync(connection, $"insert into {table} values ($1, $2, 1, $3)", marker, writer, (object?)note ?? DBNull.Value);
                change = new Committed(xid8, 'I', marker, new RowState(1, note));
            }
            else if (dice < 80)
            {
                string marker = live.Keys.ElementAt(random.Next(live.Count));
                RowState next = live[marker] with { Version = live[marker].Version + 1 };
                await ExecuteAsync(connection, $"update {table} set version = $2 where marker = $1", marker, next.Version);
                change = new Committed(xid8, 'U', marker, next);
            }
            else
            {
                string marker = live.Keys.ElementAt(random.Next(live.Count));
                await ExecuteAsync(connection, $"delete from {table} where marker = $1", marker);
                change = new Committed(xid8, 'D', marker, null);
            }

            if (rollback)
            {
                await transaction.RollbackAsync(CancellationToken.None);
                if (change.Kind == 'I')
                {
                    lock (rolledBack)
                    {
                        rolledBack.Add(change.Marker);
                    }
                }

                continue;
            }

            await transaction.CommitAsync(CancellationToken.None);
            change.Apply(live);
            lock (log)
            {
                log.Add(change);
            }

            onCommit();
        }
    }

    private static async Task<(List<string> Rows, string Snapshot)> ReadInImportedSnapshotAsync(NpgsqlDataSource dataSource, string table, string exported)
    {
        await using NpgsqlConnection connection = await dataSource.OpenConnectionAsync(Ct);
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, Ct);
        await using (var import = new NpgsqlCommand($"set transaction snapshot '{exported}'", connection, transaction))
        {
            await import.ExecuteNonQueryAsync(Ct);
        }

        string snapshot;
        await using (var current = new NpgsqlCommand("select pg_current_snapshot()::text", connection, transaction))
        {
            snapshot = (string)(await current.ExecuteScalarAsync(Ct))!;
        }

        var rows = new List<string>();
        await using (var select = new NpgsqlCommand($"select marker, writer, version, note from {table}", connection, transaction) { AllResultTypesAreUnknown = true })
        {
            await using NpgsqlDataReader reader = await select.ExecuteReaderAsync(Ct);
            while (await reader.ReadAsync(Ct))
            {
                rows.Add(Render(reader.GetString(0), int.Parse(reader.GetString(1), CultureInfo.InvariantCulture),
                    new RowState(int.Parse(reader.GetString(2), CultureInfo.InvariantCulture), reader.IsDBNull(3) ? null : reader.GetString(3))));
            }
        }

        await transaction.RollbackAsync(Ct);
        rows.Sort(StringComparer.Ordinal);
        return (rows, snapshot);
    }

    private static string Render(string marker, int writer, RowState state) =>
        $"{marker}|{writer}|{state.Version}|{state.Note ?? "<null>"}";

    private async Task<string> CreateTableAsync(string testName, string columns)
    {
        string name = new string(testName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
        if (name.Length > 40)
        {
            name = name[..40];
        }

        string table = "public." + name;
        await ExecuteOnceAsync($"drop view if exists {table}_v");
        await ExecuteOnceAsync($"drop table if exists {table}");
        await ExecuteOnceAsync($"create table {table}({columns})");
        return table;
    }

    private async Task ExecuteOnceAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(fixture.PrimaryConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private Task<T> ScalarAsync<T>(string sql) => PostgresFixture.ScalarAsync<T>(fixture.PrimaryConnectionString, sql, Ct);

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (object p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p });
        }

        await command.ExecuteNonQueryAsync(CancellationToken.None);
    }

    private sealed record RowState(int Version, string? Note);

    private sealed record Committed(ulong Xid8, char Kind, string Marker, RowState? After)
    {
        public void Apply(Dictionary<string, RowState> rows)
        {
            if (After is null)
            {
                Assert.True(rows.Remove(Marker), $"{this}: deleted a row that was not there");
            }
            else
            {
                rows[Marker] = After;
            }
        }

        public override string ToString() => $"{Kind}{Marker}@{Xid8}";
    }
}
