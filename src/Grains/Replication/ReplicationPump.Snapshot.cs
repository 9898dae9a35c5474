using Npgsql;
using Npgsql.Replication;
using OrleansLsn.Replication.Snapshot;

namespace OrleansLsn.Replication;

/// <summary>Snapshot then stream: a subscriber that first gets a consistent copy of published tables.</summary>
public sealed partial class ReplicationPump
{
    /// <summary>
    /// The walsender's settings that shape the text of values (pgoutput renders values with its session's output
    /// functions); a snapshot is read with the same, so that its texts equal the stream's.
    /// </summary>
    private static readonly string[] OutputSettingNames = ["TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits", "bytea_output", "lc_monetary", "search_path"];

    private volatile string? _primaryConnectionString;
    private volatile IReadOnlyList<KeyValuePair<string, string>>? _outputSettings;

    /// <summary>
    /// Adds a subscriber that first gets a copy of <paramref name="request"/>'s tables in one snapshot, then the
    /// stream, joined exactly: its cursor holds the slot's position from before the snapshot was taken (what is
    /// acknowledged never passes it), the copy is delivered chunk by chunk with the same backpressure as batches, and
    /// then the stream from the hold on, without the transactions the snapshot already holds. Other subscribers keep
    /// streaming meanwhile. Returns once the snapshot is taken; remembered on the primary as <see cref="SubscribeAsync"/>
    /// does. Call it once the slot is ready (<see cref="WaitForSlotAsync"/>).
    /// </summary>
    /// <param name="onChanges">Gets the snapshot batches (<see cref="ChangeBatch.Snapshot"/> set), then the stream's.</param>
    /// <param name="name">The subscriber's name.</param>
    /// <param name="request">The tables (in the slot's publication) and the rows per batch.</param>
    /// <param name="onSnapshotFailed">Called (from the delivery loop) if the copy fails after this returned; the subscription then delivers nothing more.</param>
    /// <param name="cancellationToken">Cancels taking the snapshot.</param>
    /// <exception cref="ArgumentException">The request names a table that is not <c>schema.table</c> or not in the
    /// publication, or its chunk size is out of range; nothing was subscribed.</exception>
    /// <exception cref="NpgsqlException">The primary could not be read; nothing was subscribed.</exception>
    public async Task<ReplicationSubscription> SubscribeFromSnapshotAsync(
        Func<ChangeBatch, CancellationToken, Task> onChanges,
        string name,
        SnapshotRequest request,
        Action<string>? onSnapshotFailed = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(onChanges);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (request.ChunkRows is < 1 or > SnapshotRequest.MaxChunkRows)
        {
            throw new ArgumentException($"SnapshotRequest.ChunkRows must be between 1 and {SnapshotRequest.MaxChunkRows}; it is {request.ChunkRows}.", nameof(request));
        }

        string connectionString = _primaryConnectionString
            ?? throw new InvalidOperationException($"The slot \"{Slot}\" is not ready yet: call WaitForSlotAsync first.");
        IReadOnlyList<KeyValuePair<string, string>> settings = await OutputSettingsAsync(connectionString, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<string> tables = await ResolveTablesAsync(connectionString, request, cancellationToken).ConfigureAwait(false);

        ChangeBacklog.Cursor cursor;
        lock (_flushLock)
        {
            // Before the snapshot is taken: everything that committed before the hold is then in it.
            cursor = Backlog.AddParkedCursor(new Lsn(_flushed));
        }

        SubscriberSnapshot? snapshot = null;
        ReplicationSubscription subscription;
        try
        {
            snapshot = await SubscriberSnapshot.StartAsync(Slot, connectionString, settings, tables, request.ChunkRows, cursor.HoldLsn, Time, cancellationToken).ConfigureAwait(false);
            lock (_subscriptions)
            {
                subscription = new ReplicationSubscription(this, Backlog, name, onChanges, cursor, snapshot, onSnapshotFailed);
                _subscriptions.Add(subscription);
            }
        }
        catch
        {
            if (snapshot is not null)
            {
                await snapshot.DisposeAsync().ConfigureAwait(false);
            }

            Backlog.RemoveCursor(cursor);
            throw;
        }

        Log.SnapshotTaken(_logger, Slot, name, tables.Count, snapshot.Cut.ToString(), cursor.HoldLsn.ToString());
        return await RememberAsync(subscription, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Ends the current session so that the next one streams again from the flushed position (for a snapshot subscriber
    /// whose copy is done). Without a session, the next one does it anyway.
    /// </summary>
    internal void RequestRewind()
    {
        Session? session;
        lock (_flushLock)
        {
            session = Volatile.Read(ref _session);
            if (session is null)
            {
                return;
            }

            session.Rewind = true;
        }

        try
        {
            // Not under the lock, and not inline: the session's own cleanup takes the flush lock.
            _ = session.Cancellation.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
            // The session ended meanwhile; the next one starts from the flushed position anyway.
        }
    }

    internal void OnSnapshotCopied(ReplicationSubscription subscription, long rows, long batches, TimeSpan elapsed, Lsn hold) =>
        Log.SnapshotCopied(_logger, Slot, subscription.Name, rows, batches, (long)elapsed.TotalMilliseconds, hold.ToString());

    internal void OnSnapshotFailed(ReplicationSubscription subscription, long rows, Exception error)
    {
        string message = $"the snapshot of subscriber '{subscription.Name}' failed: {Describe(error)}";
        RecordError(ReplicationErrorKind.SubscriberFailed, message);
        Log.SnapshotFailed(_logger, Slot, subscription.Name, rows, Describe(error));
    }

    private static async Task<IReadOnlyList<KeyValuePair<string, string>>> ReadOutputSettingsAsync(LogicalReplicationConnection connection, CancellationToken token)
    {
        var settings = new List<KeyValuePair<string, string>>(OutputSettingNames.Length);
        foreach (string setting in OutputSettingNames)
        {
            settings.Add(new(setting, await connection.Show(setting, token).ConfigureAwait(false)));
        }

        return settings;
    }

    private async Task<IReadOnlyList<KeyValuePair<string, string>>> OutputSettingsAsync(string connectionString, CancellationToken cancellationToken)
    {
        if (_outputSettings is { } known)
        {
            return known;
        }

        // The slot is ready but the first session has not read them yet: ask a replication connection, as it would.
        await using var connection = new LogicalReplicationConnection(connectionString);
        await connection.Open(cancellationToken).ConfigureAwait(false);
        return await ReadOutputSettingsAsync(connection, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The tables to copy: the request's, each checked to be in the publication, or all of the publication's.</summary>
    private async Task<IReadOnlyList<string>> ResolveTablesAsync(string connectionString, SnapshotRequest request, CancellationToken cancellationToken)
    {
        var published = new List<string>();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1 ORDER BY schemaname, tablename", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = Options.PublicationName });
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                published.Add(reader.GetString(0) + "." + reader.GetString(1));
            }
        }

        if (request.Tables.Count == 0)
        {
            if (published.Count == 0)
            {
                throw new ArgumentException($"Publication \"{Options.PublicationName}\" of slot \"{Slot}\" has no tables: there is nothing to copy.", nameof(request));
            }

            return published;
        }

        var problems = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string table in request.Tables)
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

            if (problem is null && !published.Contains(table, StringComparer.Ordinal))
            {
                problem = $"table \"{table}\" is not in publication \"{Options.PublicationName}\" (only published tables can be copied)";
            }

            if (problem is not null)
            {
                problems.Add(problem);
            }
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid snapshot request: " + string.Join("; ", problems) + ".", nameof(request));
        }

        return [.. request.Tables];
    }
}
