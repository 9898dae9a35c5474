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

    private readonly object _creationLock = new();
    private volatile string? _primaryConnectionString;
    private volatile IReadOnlyList<KeyValuePair<string, string>>? _outputSettings;

    // The snapshot exported when this pump created the slot, and the hold that keeps the slot at its consistent point,
    // until the first snapshot subscriber takes both or CreatedSlotSnapshotLifetime passes (under _creationLock).
    private CreationSnapshot? _creationSnapshot;

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

        CreationSnapshot? creation = TakeCreationSnapshot();
        ChangeBacklog.Cursor cursor;
        lock (_flushLock)
        {
            // Before the snapshot is taken: everything that committed before the hold is then in it. The snapshot
            // exported with the slot holds it at its consistent point, which the flushed position cannot have passed.
            ulong hold = creation is null ? _flushed : Math.Min(_flushed, creation.Snapshot.ConsistentPoint.Value);
            cursor = Backlog.AddParkedCursor(new Lsn(hold));
        }

        SubscriberSnapshot? snapshot = null;
        ReplicationSubscription subscription;
        try
        {
            if (creation is not null)
            {
                snapshot = await StartInCreationSnapshotAsync(creation, connectionString, settings, tables, request.ChunkRows, cursor.HoldLsn, cancellationToken).ConfigureAwait(false);
                creation = null;
            }

            snapshot ??= await SubscriberSnapshot.StartAsync(Slot, Options.PublicationName, connectionString, settings, tables, request.ChunkRows, cursor.HoldLsn, null, Time, cancellationToken).ConfigureAwait(false);
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

            if (creation is not null && !ReturnCreationSnapshot(creation))
            {
                await ReleaseCreationSnapshotAsync(creation, "a newer one replaced it").ConfigureAwait(false);
            }

            Backlog.RemoveCursor(cursor);
            throw;
        }

        Log.SnapshotTaken(_logger, Slot, name, tables.Count, snapshot.Cut.ToString(), snapshot.AtSlotCreation ? "exported when the slot was created" : "taken now", cursor.HoldLsn.ToString());
        return await RememberAsync(subscription, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the copy in the snapshot exported with the slot and releases that (the subscriber's own transaction now
    /// holds the snapshot). Returns <see langword="null"/> when it can no longer be imported (its transaction ended, say
    /// by <c>idle_in_transaction_session_timeout</c>): the caller then takes a snapshot of its own, exact as well, since
    /// the hold is at or before the flushed position. A bad request throws with the exported snapshot left untouched.
    /// </summary>
    private async Task<SubscriberSnapshot?> StartInCreationSnapshotAsync(
        CreationSnapshot creation,
        string connectionString,
        IReadOnlyList<KeyValuePair<string, string>> settings,
        IReadOnlyList<string> tables,
        int chunkRows,
        Lsn hold,
        CancellationToken cancellationToken)
    {
        SubscriberSnapshot? snapshot = null;
        try
        {
            snapshot = await SubscriberSnapshot.StartAsync(Slot, Options.PublicationName, connectionString, settings, tables, chunkRows, hold, creation.Snapshot, Time, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.InvalidParameterValue or PostgresErrorCodes.ObjectNotInPrerequisiteState)
        {
            // "invalid snapshot identifier": the exporting transaction is gone.
            Log.CreationSnapshotNotKept(_logger, Slot, "imported", Describe(e));
        }

        await ReleaseCreationSnapshotAsync(creation, snapshot is null ? "it could not be imported" : "taken by the first snapshot subscriber").ConfigureAwait(false);
        return snapshot;
    }

    /// <summary>
    /// Called by slot setup with the id of the snapshot the new slot exported, while it is valid: imports it into a
    /// transaction of its own and holds the slot at its consistent point, for <see cref="ReplicationPumpOptions.CreatedSlotSnapshotLifetime"/>.
    /// Its failure is logged, not thrown: the slot is made anyway, and snapshot subscribers then take their own.
    /// </summary>
    private async Task KeepCreationSnapshotAsync(string connectionString, string id, Lsn consistentPoint, CancellationToken cancellationToken)
    {
        if (Backlog.Subscribers > 0)
        {
            // Someone subscribed (for the stream alone) before the slot existed: it was not made for a snapshot.
            return;
        }

        SlotCreationSnapshot kept;
        try
        {
            kept = await SlotCreationSnapshot.ImportAsync(connectionString, id, consistentPoint, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.CreationSnapshotNotKept(_logger, Slot, "kept", Describe(e));
            return;
        }

        var creation = new CreationSnapshot(kept, Backlog.AddHold(consistentPoint));
        CreationSnapshot? previous;
        lock (_creationLock)
        {
            previous = _creationSnapshot;
            _creationSnapshot = creation;
        }

        await ReleaseCreationSnapshotAsync(previous, "a newer one replaced it").ConfigureAwait(false);
        TimeSpan lifetime = Options.CreatedSlotSnapshotLifetime;
        Log.CreationSnapshotKept(_logger, Slot, kept.Cut.ToString(), consistentPoint.ToString(), (long)lifetime.TotalMilliseconds);
        _ = ExpireCreationSnapshotAsync(creation, lifetime);
    }

    private async Task ExpireCreationSnapshotAsync(CreationSnapshot creation, TimeSpan lifetime)
    {
        try
        {
            await Task.Delay(lifetime, Time, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;   // The pump stops and releases it.
        }

        bool mine;
        lock (_creationLock)
        {
            mine = ReferenceEquals(_creationSnapshot, creation);
            if (mine)
            {
                _creationSnapshot = null;
            }
        }

        if (mine)
        {
            await ReleaseCreationSnapshotAsync(creation, $"no snapshot subscriber came within {lifetime}").ConfigureAwait(false);
        }
    }

    private CreationSnapshot? TakeCreationSnapshot()
    {
        lock (_creationLock)
        {
            CreationSnapshot? taken = _creationSnapshot;
            _creationSnapshot = null;
            return taken;
        }
    }

    /// <summary>Puts back a creation snapshot a bad request took; <see langword="false"/> if another took its place.</summary>
    private bool ReturnCreationSnapshot(CreationSnapshot creation)
    {
        lock (_creationLock)
        {
            if (_creationSnapshot is not null || Volatile.Read(ref _disposed) != 0)
            {
                return false;
            }

            _creationSnapshot = creation;
            return true;
        }
    }

    private async Task ReleaseCreationSnapshotAsync(CreationSnapshot? creation, string why)
    {
        if (creation is null)
        {
            return;
        }

        Backlog.RemoveCursor(creation.Hold);
        try
        {
            await creation.Snapshot.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Closing the connection ends the transaction whatever the failure; nothing to recover.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        Log.CreationSnapshotReleased(_logger, Slot, why);
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

    private sealed record CreationSnapshot(SlotCreationSnapshot Snapshot, ChangeBacklog.Cursor Hold);
}
