using System.Globalization;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;

namespace OrleansLsn.Replication;

/// <summary>
/// Everything checked or created on the primary before streaming: <c>wal_level</c>, the server version (and so the
/// pgoutput protocol), the per-slot advisory lock that keeps one pump per slot in the cluster, the publication and the
/// slot. Names were validated before; they are sent as parameters, or quoted where SQL needs an identifier.
/// </summary>
internal static class SlotSetup
{
    /// <summary>First key of the advisory lock (<c>'OLSN'</c>); the second is <c>hashtext(slot name)</c>.</summary>
    internal const int AdvisoryLockNamespace = 0x4F4C534E;

    /// <summary>The first <c>server_version_num</c> with failover slots (<c>pg_create_logical_replication_slot(..., failover)</c>).</summary>
    internal const int FailoverSlotsVersion = 170000;

    internal sealed record Result(PgOutputProtocolVersion ProtocolVersion, int ServerVersion, Lsn ConfirmedFlush, string? CreatedSlotAt, bool CreatedPublication);

    /// <summary>
    /// Checks the server and takes the slot's advisory lock; creates the publication and the slot when missing (and
    /// allowed). With <paramref name="onExported"/>, a slot created here is created over a replication connection
    /// (<paramref name="replicationConnectionString"/>) with an exported snapshot, and <paramref name="onExported"/> gets
    /// its id and the slot's consistent point while the snapshot is valid (before anything else is sent on that
    /// connection). A failover slot is created without one: Npgsql 10 has no failover option on that command.
    /// </summary>
    internal static async Task<Result> PrepareAsync(
        NpgsqlConnection admin,
        ReplicationPumpOptions options,
        string replicationConnectionString,
        Func<string, Lsn, CancellationToken, Task>? onExported,
        CancellationToken cancellationToken)
    {
        string slot = options.SlotName;
        string walLevel;
        int version;
        string database;
        string role;
        bool mayReplicate;
        await using (var cmd = new NpgsqlCommand(
            "SELECT current_setting('wal_level'), current_setting('server_version_num')::int, current_database(), current_user::text, "
            + "coalesce((SELECT r.rolreplication OR r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user), false)", admin))
        await using (NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            walLevel = reader.GetString(0);
            version = reader.GetInt32(1);
            database = reader.GetString(2);
            role = reader.GetString(3);
            mayReplicate = reader.GetBoolean(4);
        }

        if (!mayReplicate)
        {
            // Checked first: without the attribute the slot functions and the replication connection fail with messages
            // that do not say which role or what to grant.
            throw new ReplicationException(
                ReplicationErrorKind.PermissionDenied,
                $"role \"{role}\" lacks the REPLICATION attribute, which replication slot \"{slot}\" needs (to create and stream from a logical slot); grant it as a superuser (ALTER ROLE {PostgresIdentifiers.Quote(role)} REPLICATION) or connect as the silo role that 'database-roles' creates.");
        }

        if (!string.Equals(walLevel, "logical", StringComparison.Ordinal))
        {
            throw new ReplicationException(
                ReplicationErrorKind.ServerConfiguration,
                $"wal_level is '{walLevel}' on the server; logical replication needs wal_level = logical (set it in postgresql.conf and restart the server).");
        }

        if (version < 140000)
        {
            throw new ReplicationException(
                ReplicationErrorKind.ServerConfiguration,
                $"PostgreSQL {version / 10000} is too old; the pump needs PostgreSQL 14 or later (pgoutput protocol 2).");
        }

        if (options.Failover && version < FailoverSlotsVersion)
        {
            // Streaming without the flag would look fine until the first promotion, which would then lose the slot.
            throw new ReplicationException(
                ReplicationErrorKind.ServerConfiguration,
                $"{nameof(ReplicationPumpOptions.Failover)} is on for replication slot \"{slot}\", but the server is PostgreSQL {FormatVersion(version)}; failover slots need PostgreSQL 17 or later. Upgrade the server, or turn {nameof(ReplicationPumpOptions.Failover)} off (the slot then does not survive a promotion of a standby).");
        }

        await AcquireLockAsync(admin, slot, cancellationToken).ConfigureAwait(false);
        bool createdPublication = await EnsurePublicationAsync(admin, options, database, cancellationToken).ConfigureAwait(false);
        (Lsn confirmed, string? createdAt) = await EnsureSlotAsync(admin, options, database, version, replicationConnectionString, onExported, cancellationToken).ConfigureAwait(false);

        PgOutputProtocolVersion protocol = version >= 160000 ? PgOutputProtocolVersion.V4
            : version >= 150000 ? PgOutputProtocolVersion.V3
            : PgOutputProtocolVersion.V2;
        return new Result(protocol, version, confirmed, createdAt, createdPublication);
    }

    private static async Task AcquireLockAsync(NpgsqlConnection admin, string slot, CancellationToken cancellationToken)
    {
        await using (var cmd = new NpgsqlCommand("SELECT pg_try_advisory_lock($1, hashtext($2))", admin))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = AdvisoryLockNamespace });
            cmd.Parameters.Add(new NpgsqlParameter { Value = slot });
            if ((bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
            {
                return;
            }
        }

        int? holder = null;
        await using (var cmd = new NpgsqlCommand(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objid = hashtext($2)::oid AND objsubid = 2 LIMIT 1",
            admin))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = AdvisoryLockNamespace });
            cmd.Parameters.Add(new NpgsqlParameter { Value = slot });
            holder = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as int?;
        }

        throw new ReplicationException(
            ReplicationErrorKind.SlotInUse,
            $"replication slot \"{slot}\" is owned by another pump (it holds the slot's advisory lock{(holder is null ? "" : $", backend PID {holder}")}); only one pump per slot may run in the cluster.");
    }

    private static async Task<bool> EnsurePublicationAsync(NpgsqlConnection admin, ReplicationPumpOptions options, string database, CancellationToken cancellationToken)
    {
        string publication = options.PublicationName;
        await using (var cmd = new NpgsqlCommand("SELECT 1 FROM pg_publication WHERE pubname = $1", admin))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = publication });
            if (await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not null)
            {
                return false;
            }
        }

        if (!options.CreatePublication)
        {
            throw new ReplicationException(
                ReplicationErrorKind.PublicationMissing,
                $"publication \"{publication}\" does not exist in database \"{database}\"; create it (CREATE PUBLICATION ... FOR ALL TABLES) or enable {nameof(ReplicationPumpOptions.CreatePublication)}.");
        }

        string scope = options.PublicationTables.Count == 0
            ? "FOR ALL TABLES"
            : "FOR TABLE " + string.Join(", ", options.PublicationTables.Select(PostgresIdentifiers.QuoteTable));
        try
        {
            await using var create = new NpgsqlCommand($"CREATE PUBLICATION {PostgresIdentifiers.Quote(publication)} {scope}", admin);
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateObject)
        {
            // Created concurrently by someone else: fine.
            return false;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new ReplicationException(
                ReplicationErrorKind.PermissionDenied,
                $"the connection's role may not create publication \"{publication}\" in database \"{database}\" ({e.SqlState}: {e.MessageText}): creating a publication needs CREATE on the database and ownership of its tables (FOR ALL TABLES: a superuser). Create it as the tables' owner ('database-roles --apply' does, for the configured slots) and turn {nameof(ReplicationPumpOptions.CreatePublication)} off, or grant those rights.",
                false,
                e);
        }
    }

    private static async Task<(Lsn Confirmed, string? CreatedAt)> EnsureSlotAsync(
        NpgsqlConnection admin,
        ReplicationPumpOptions options,
        string database,
        int version,
        string replicationConnectionString,
        Func<string, Lsn, CancellationToken, Task>? onExported,
        CancellationToken cancellationToken)
    {
        string slot = options.SlotName;
        bool hasFailoverColumn = version >= FailoverSlotsVersion;
        await using (var cmd = new NpgsqlCommand(
            "SELECT slot_type, plugin, database, active_pid, wal_status, confirmed_flush_lsn::text, "
            + (hasFailoverColumn ? "failover" : "false")
            + " FROM pg_replication_slots WHERE slot_name = $1",
            admin))
        {
            cmd.Parameters.Add(new NpgsqlParameter { Value = slot });
            await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                string type = reader.GetString(0);
                string? plugin = reader.IsDBNull(1) ? null : reader.GetString(1);
                string? slotDatabase = reader.IsDBNull(2) ? null : reader.GetString(2);
                int? activePid = reader.IsDBNull(3) ? null : reader.GetInt32(3);
                string? walStatus = reader.IsDBNull(4) ? null : reader.GetString(4);
                string? confirmed = reader.IsDBNull(5) ? null : reader.GetString(5);
                bool failover = !reader.IsDBNull(6) && reader.GetBoolean(6);
                if (type != "logical" || plugin != "pgoutput" || slotDatabase != database)
                {
                    throw new ReplicationException(
                        ReplicationErrorKind.SlotMismatch,
                        $"replication slot \"{slot}\" exists but is a {type} slot with plugin '{plugin ?? "none"}' in database '{slotDatabase ?? "none"}'; the pump needs a logical pgoutput slot in '{database}'.");
                }

                if (walStatus == "lost")
                {
                    throw new ReplicationException(
                        ReplicationErrorKind.SlotInvalidated,
                        $"replication slot \"{slot}\" was invalidated: the WAL it needed was removed (max_slot_wal_keep_size). Changes since its last acknowledgement are gone; drop and recreate the slot, and resynchronise the subscribers.",
                        isTerminal: true);
                }

                if (options.Failover && !failover)
                {
                    // Npgsql 10 has no call for ALTER_REPLICATION_SLOT (a replication-protocol command without an SQL
                    // function), so the operator runs it once; the pump retries meanwhile.
                    throw new ReplicationException(
                        ReplicationErrorKind.SlotMismatch,
                        $"replication slot \"{slot}\" exists without failover, but {nameof(ReplicationPumpOptions.Failover)} is on; enable it over a replication connection (psql \"dbname={database} replication=database\" -c 'ALTER_REPLICATION_SLOT {slot} (FAILOVER true)') while no consumer is streaming from it, or drop the slot so that the pump recreates it.");
                }

                if (activePid is not null)
                {
                    throw new ReplicationException(
                        ReplicationErrorKind.SlotInUse,
                        $"replication slot \"{slot}\" is active for PID {activePid}: another consumer is streaming from it.");
                }

                return (confirmed is null ? Lsn.Invalid : Lsn.Parse(confirmed), null);
            }
        }

        if (!options.CreateSlot)
        {
            throw new ReplicationException(
                ReplicationErrorKind.SlotMissing,
                $"replication slot \"{slot}\" does not exist; create it (pg_create_logical_replication_slot('{slot}', 'pgoutput')) or enable {nameof(ReplicationPumpOptions.CreateSlot)}.");
        }

        if (onExported is not null && !options.Failover)
        {
            return await CreateWithExportedSnapshotAsync(slot, replicationConnectionString, onExported, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            // Arguments: name, plugin, temporary, two-phase, failover (PostgreSQL 17+; Failover was checked against the version).
            await using var create = new NpgsqlCommand(
                options.Failover
                    ? "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
                    : "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                admin);
            create.Parameters.Add(new NpgsqlParameter { Value = slot });
            // A new slot's confirmed_flush_lsn is its consistent point.
            string lsn = (string)(await create.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            return (Lsn.Parse(lsn), lsn);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateObject)
        {
            return (Lsn.Invalid, null);
        }
    }

    /// <summary>
    /// <c>CREATE_REPLICATION_SLOT ... LOGICAL pgoutput (SNAPSHOT 'export')</c>: the snapshot in which exactly the
    /// transactions before the consistent point are visible, handed to <paramref name="onExported"/> while it is valid.
    /// </summary>
    private static async Task<(Lsn Confirmed, string? CreatedAt)> CreateWithExportedSnapshotAsync(
        string slot, string replicationConnectionString, Func<string, Lsn, CancellationToken, Task> onExported, CancellationToken cancellationToken)
    {
        await using var connection = new LogicalReplicationConnection(replicationConnectionString);
        await connection.Open(cancellationToken).ConfigureAwait(false);
        PgOutputReplicationSlot created;
        try
        {
            created = await connection.CreatePgOutputReplicationSlot(
                slot, temporarySlot: false, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.Export, twoPhase: false, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateObject)
        {
            return (Lsn.Invalid, null);
        }

        var consistent = new Lsn((ulong)created.ConsistentPoint);
        if (created.SnapshotName is { } exported)
        {
            // Still valid: nothing was sent on the connection since the slot was created.
            await onExported(exported, consistent, cancellationToken).ConfigureAwait(false);
        }

        return (consistent, consistent.ToString());
    }

    private static string FormatVersion(int version) => version >= 100000
        ? string.Create(CultureInfo.InvariantCulture, $"{version / 10000}.{version % 10000}")
        : string.Create(CultureInfo.InvariantCulture, $"{version / 10000}.{version / 100 % 100}.{version % 100}");
}
