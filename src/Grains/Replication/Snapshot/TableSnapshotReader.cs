using System.Data;
using System.Runtime.CompilerServices;
using Npgsql;

namespace OrleansLsn.Replication.Snapshot;

/// <summary>
/// Reads tables in one MVCC snapshot and tells which snapshot that was, so a change stream can be joined exactly to the
/// copy (see <see cref="PgSnapshot.SkipInStream"/>).
/// </summary>
/// <remarks>
/// One <c>REPEATABLE READ, READ ONLY</c> transaction: its first statement reads <c>pg_current_snapshot()</c>, which
/// therefore is the transaction's snapshot, the one every later statement (the catalog look-ups aside) reads in. Each
/// table is then read with <c>COPY (SELECT ...) TO STDOUT</c>, a chunk of lines at a time as the consumer asks: between
/// chunks nothing is read and TCP holds the server, so memory stays bounded whatever the table's size. The transaction is rolled back when the enumeration ends, fails, is cancelled or
/// is abandoned (disposed early).
/// <para>
/// Values are COPY's text format, unescaped: each type's output function as pgoutput renders them, so a
/// consumer can rebuild a table from the rows and then apply <see cref="RowChange"/>s. Both connections must use the
/// same session settings that shape text output (<c>DateStyle</c>, <c>IntervalStyle</c>, <c>TimeZone</c>,
/// <c>extra_float_digits</c>, <c>bytea_output</c>) for the texts to be equal.
/// </para>
/// <para>
/// Columns are those pgoutput publishes by default: not dropped, not generated, in column order; key columns follow
/// the table's replica identity. Read for a publication (PostgreSQL 15+), only its column list's columns and the rows
/// its row filter passes. Generated columns published by PostgreSQL 18's <c>publish_generated_columns</c> are not
/// read.
/// </para>
/// </remarks>
internal static class TableSnapshotReader
{
    /// <summary>
    /// Reads <paramref name="tables"/> (each <c>schema.table</c>) in one snapshot on a connection from
    /// <paramref name="dataSource"/>, yielding chunks of at most <paramref name="chunkSize"/> rows, table by table in
    /// the order given. An empty table yields one empty chunk.
    /// </summary>
    /// <exception cref="ArgumentException">A name is invalid or not schema-qualified (before connecting), or a table
    /// does not exist or is not a table (the message names every such table).</exception>
    public static async IAsyncEnumerable<SnapshotChunk> ReadAsync(
        NpgsqlDataSource dataSource,
        IReadOnlyList<string> tables,
        int chunkSize,
        bool exportSnapshot = false,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        Validate(tables, chunkSize, null);
        NpgsqlConnection connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await foreach (SnapshotChunk chunk in ReadCoreAsync(connection, tables, chunkSize, exportSnapshot, null, null, cancellationToken).ConfigureAwait(false))
            {
                yield return chunk;
            }
        }
    }

    /// <summary>
    /// As the other overload, on an open <paramref name="connection"/> with no transaction under way; the connection
    /// stays open (and out of any transaction) afterwards. With <paramref name="importSnapshot"/> (an id from
    /// <c>pg_export_snapshot()</c> or a slot's exported snapshot, whose transaction is still open) the tables are read
    /// in that snapshot instead of a new one (<c>SET TRANSACTION SNAPSHOT</c>). With <paramref name="publication"/>
    /// (PostgreSQL 15+), each table is read as that publication publishes it: only the columns of its column list, and
    /// only the rows its row filter passes (<c>pg_publication_tables.attnames</c> and <c>rowfilter</c>).
    /// </summary>
    public static IAsyncEnumerable<SnapshotChunk> ReadAsync(
        NpgsqlConnection connection,
        IReadOnlyList<string> tables,
        int chunkSize,
        bool exportSnapshot = false,
        string? importSnapshot = null,
        string? publication = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Validate(tables, chunkSize, importSnapshot);
        return ReadCoreAsync(connection, tables, chunkSize, exportSnapshot, importSnapshot, publication, cancellationToken);
    }

    /// <summary>
    /// Whether <paramref name="id"/> has the form of a snapshot id PostgreSQL exports (hexadecimal groups joined by
    /// dashes, as in <c>00000003-0000001B-1</c>): the only form put into <c>SET TRANSACTION SNAPSHOT</c>'s literal.
    /// </summary>
    internal static bool IsSnapshotId(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 64 || id[0] == '-' || id[^1] == '-')
        {
            return false;
        }

        foreach (char c in id)
        {
            if (!char.IsAsciiHexDigit(c) && c != '-')
            {
                return false;
            }
        }

        return id.Contains('-', StringComparison.Ordinal) && !id.Contains("--", StringComparison.Ordinal);
    }

    private static void Validate(IReadOnlyList<string> tables, int chunkSize, string? importSnapshot)
    {
        ArgumentNullException.ThrowIfNull(tables);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        if (importSnapshot is not null && !IsSnapshotId(importSnapshot))
        {
            throw new ArgumentException($"\"{importSnapshot}\" is not a snapshot id as pg_export_snapshot() gives them.", nameof(importSnapshot));
        }

        if (tables.Count == 0)
        {
            throw new ArgumentException("Name at least one table to read.", nameof(tables));
        }

        var problems = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string table in tables)
        {
            string? problem = PostgresIdentifiers.CheckTableName(table);
            if (problem is null && !table.Contains('.', StringComparison.Ordinal))
            {
                problem = $"table name \"{table}\" is not schema-qualified; use schema.table";
            }

            if (problem is null && !seen.Add(table))
            {
                problem = $"table \"{table}\" is named twice";
            }

            if (problem is not null)
            {
                problems.Add(problem);
            }
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid table names: " + string.Join("; ", problems) + ".", nameof(tables));
        }
    }

    private static async IAsyncEnumerable<SnapshotChunk> ReadCoreAsync(
        NpgsqlConnection connection,
        IReadOnlyList<string> tables,
        int chunkSize,
        bool exportSnapshot,
        string? importSnapshot,
        string? publication,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        NpgsqlTransaction transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        try
        {
            // The snapshot must be the first statement's: in REPEATABLE READ the first statement that needs a snapshot
            // fixes the transaction's, and SET TRANSACTION needs none.
            PgSnapshot snapshot;
            string? exported = null;
            await using (var batch = new NpgsqlBatch(connection, transaction))
            {
                if (importSnapshot is not null)
                {
                    // Checked to be hexadecimal groups and dashes: safe in the literal (the command takes no parameter).
                    batch.BatchCommands.Add(new NpgsqlBatchCommand($"SET TRANSACTION SNAPSHOT '{importSnapshot}'"));
                }

                batch.BatchCommands.Add(new NpgsqlBatchCommand("SET TRANSACTION READ ONLY"));
                // A table's COPY runs as long as its consumer takes (a slow subscriber holds it): no statement timeout.
                // Neither SET takes a snapshot, so the next statement's is still the transaction's.
                batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL statement_timeout = 0"));
                batch.BatchCommands.Add(new NpgsqlBatchCommand(
                    exportSnapshot ? "SELECT pg_current_snapshot()::text, pg_export_snapshot()" : "SELECT pg_current_snapshot()::text, NULL::text"));
                NpgsqlDataReader reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    snapshot = PgSnapshot.Parse(reader.GetString(0));
                    exported = reader.IsDBNull(1) ? null : reader.GetString(1);
                }
            }

            IReadOnlyList<(ChangeRelation Relation, bool IsPartitioned, string? RowFilter)> relations =
                await DescribeAsync(connection, transaction, tables, publication, cancellationToken).ConfigureAwait(false);
            for (int t = 0; t < relations.Count; t++)
            {
                (ChangeRelation relation, bool isPartitioned, string? rowFilter) = relations[t];
                string columns = string.Join(", ", relation.Columns.Select(c => PostgresIdentifiers.Quote(c.Name)));
                // ONLY: pgoutput reports an inheritance child's changes as the child's own; a partitioned table has no
                // rows of its own, so its partitions are read through it.
                string from = (isPartitioned ? "" : "ONLY ") + PostgresIdentifiers.Quote(relation.Schema) + "." + PostgresIdentifiers.Quote(relation.Name);
                // COPY's text format is each value through its type's output function (as pgoutput sends it), escaped:
                // one stream, read as the consumer asks for chunks (TCP holds the server meanwhile), no per-value reads.
                // A row filter is the publication's own expression, as the server prints it (pg_get_expr): trusted as the
                // catalog is, and evaluated here exactly as pgoutput evaluates it on each change.
                string where = rowFilter is null ? "" : $" WHERE ({rowFilter})";
                TextReader copy = await connection.BeginTextExportAsync(
                    $"COPY (SELECT {columns} FROM {from}{where}) TO STDOUT", cancellationToken).ConfigureAwait(false);
                try
                {
                    bool any = false;
                    while (true)
                    {
                        List<IReadOnlyList<string?>> rows = await ReadChunkAsync(copy, chunkSize, relation.Columns.Count, cancellationToken).ConfigureAwait(false);
                        if (rows.Count == 0)
                        {
                            if (!any)
                            {
                                yield return new SnapshotChunk(snapshot, relation, rows, exported);
                            }

                            break;
                        }

                        any = true;
                        yield return new SnapshotChunk(snapshot, relation, rows, exported);
                        if (rows.Count < chunkSize)
                        {
                            break;
                        }
                    }
                }
                finally
                {
                    // An unfinished COPY is cancelled on the server, not read to its end.
                    if (copy is IAsyncDisposable disposable)
                    {
                        await disposable.DisposeAsync().ConfigureAwait(false);
                    }
                    else
                    {
                        copy.Dispose();
                    }
                }
            }
        }
        finally
        {
            try
            {
                // Not the caller's token: it may be the reason we are here, and the transaction must end regardless.
                if (connection.State == ConnectionState.Open)
                {
                    await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                // A broken connection: the server has ended the transaction with the session.
            }

            await transaction.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task<IReadOnlyList<(ChangeRelation, bool, string?)>> DescribeAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<string> tables, string? publication, CancellationToken cancellationToken)
    {
        // Column lists and row filters came with PostgreSQL 15; before it a publication publishes every column and row.
        bool filtered = publication is not null && connection.PostgreSqlVersion.Major >= 15;
        const string Sql = """
            SELECT c.oid, c.relkind::text,
                   coalesce(array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
                   coalesce(array_agg(a.atttypid ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
                   coalesce(array_agg(
                       CASE c.relreplident
                           WHEN 'f' THEN true
                           WHEN 'd' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY (i.indkey))
                           WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident AND a.attnum = ANY (i.indkey))
                           ELSE false
                       END ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}')
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
            WHERE n.nspname = $1 AND c.relname = $2
            GROUP BY c.oid, c.relkind
            """;
        const string PublishedSql = "SELECT attnames, rowfilter FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3";
        var result = new List<(ChangeRelation, bool, string?)>(tables.Count);
        var missing = new List<string>();
        foreach (string table in tables)
        {
            int dot = table.IndexOf('.', StringComparison.Ordinal);
            string schema = table[..dot];
            string name = table[(dot + 1)..];
            await using var command = new NpgsqlCommand(Sql, connection, transaction);
            command.Parameters.Add(new NpgsqlParameter { Value = schema });
            command.Parameters.Add(new NpgsqlParameter { Value = name });
            NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    missing.Add($"{table} does not exist");
                    continue;
                }

                uint oid = reader.GetFieldValue<uint>(0);
                string kind = reader.GetString(1);
                if (kind is not ("r" or "p"))
                {
                    missing.Add($"{table} is not a table (relkind '{kind}')");
                    continue;
                }

                string[] names = reader.GetFieldValue<string[]>(2);
                uint[] types = reader.GetFieldValue<uint[]>(3);
                bool[] keys = reader.GetFieldValue<bool[]>(4);
                var columns = new ChangeColumn[names.Length];
                for (int i = 0; i < columns.Length; i++)
                {
                    columns[i] = new ChangeColumn(names[i], types[i], keys[i]);
                }

                result.Add((new ChangeRelation(oid, schema, name, columns), kind == "p", null));
            }

            if (filtered)
            {
                await using var published = new NpgsqlCommand(PublishedSql, connection, transaction);
                published.Parameters.Add(new NpgsqlParameter { Value = publication });
                published.Parameters.Add(new NpgsqlParameter { Value = schema });
                published.Parameters.Add(new NpgsqlParameter { Value = name });
                NpgsqlDataReader row = await published.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (row.ConfigureAwait(false))
                {
                    if (await row.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        // The column list keeps the table's column order, as the stream's relation message does.
                        var listed = new HashSet<string>(row.IsDBNull(0) ? [] : row.GetFieldValue<string[]>(0), StringComparer.Ordinal);
                        string? rowFilter = row.IsDBNull(1) ? null : row.GetString(1);
                        (ChangeRelation relation, bool isPartitioned, _) = result[^1];
                        ChangeColumn[] kept = [.. relation.Columns.Where(c => listed.Contains(c.Name))];
                        result[^1] = (new ChangeRelation(relation.RelationId, relation.Schema, relation.Name, kept), isPartitioned, rowFilter);
                    }
                }
            }
        }

        if (missing.Count > 0)
        {
            throw new ArgumentException("Cannot read tables: " + string.Join("; ", missing) + ".", nameof(tables));
        }

        return result;
    }

    /// <summary>Reads up to <paramref name="chunkSize"/> rows of COPY's text format (fewer only at the end).</summary>
    private static async Task<List<IReadOnlyList<string?>>> ReadChunkAsync(TextReader copy, int chunkSize, int columnCount, CancellationToken cancellationToken)
    {
        var rows = new List<IReadOnlyList<string?>>(Math.Min(chunkSize, 4096));
        while (rows.Count < chunkSize && await copy.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            rows.Add(ParseCopyTextRow(line, columnCount));
        }

        return rows;
    }

    /// <summary>
    /// One row of COPY's text format: values separated by tabs, <c>\N</c> for SQL NULL, and backslash escapes
    /// (<c>\b \f \n \r \t \v \\</c>; COPY TO emits no other, and a backslash before any other character stands for
    /// that character).
    /// </summary>
    internal static string?[] ParseCopyTextRow(string line, int columnCount)
    {
        var values = new string?[columnCount];
        if (columnCount == 0)
        {
            return values;
        }

        int column = 0;
        int start = 0;
        for (int i = 0; i <= line.Length; i++)
        {
            if (i < line.Length && line[i] != '\t')
            {
                continue;
            }

            if (column >= columnCount)
            {
                throw new FormatException($"COPY sent a row of more than {columnCount} values.");
            }

            values[column++] = Unescape(line.AsSpan(start, i - start));
            start = i + 1;
        }

        if (column != columnCount)
        {
            throw new FormatException($"COPY sent a row of {column} values; the table has {columnCount} columns.");
        }

        return values;
    }

    private static string? Unescape(ReadOnlySpan<char> field)
    {
        int backslash = field.IndexOf('\\');
        if (backslash < 0)
        {
            return field.Length == 0 ? string.Empty : new string(field);
        }

        if (field.Length == 2 && field[1] == 'N')
        {
            return null;
        }

        var text = new System.Text.StringBuilder(field.Length);
        text.Append(field[..backslash]);
        for (int i = backslash; i < field.Length; i++)
        {
            char c = field[i];
            if (c != '\\' || i + 1 == field.Length)
            {
                text.Append(c);
                continue;
            }

            char next = field[++i];
            text.Append(next switch
            {
                'b' => '\b',
                'f' => '\f',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'v' => '\v',
                _ => next,
            });
        }

        return text.ToString();
    }
}
