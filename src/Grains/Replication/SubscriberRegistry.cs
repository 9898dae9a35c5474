using Npgsql;

namespace OrleansLsn.Replication;

/// <summary>
/// The subscribers of each slot, kept in a table on the primary (<see cref="TableName"/>), so that a new pump for the
/// slot (the grain reactivated on another silo after its silo died) holds the slot for every subscriber of the previous
/// one until it subscribed again or <see cref="ReplicationPumpOptions.RejoinTimeout"/> passed. Without it, the first
/// subscriber back could confirm, and so acknowledge, changes the others never got.
/// </summary>
/// <remarks>
/// The table is created when missing if the connection's role may (<c>database-roles --apply</c> creates it and grants
/// the silo role what it needs). If it is missing and may not be created, the pump runs without remembering subscribers
/// and says so (<see cref="ReplicationStatus.LastError"/> and a warning), as it did before. Keys are slot and
/// subscriber names, sent as parameters.
/// </remarks>
internal sealed class SubscriberRegistry
{
    /// <summary>The table, in the connection's current schema.</summary>
    internal const string TableName = "orleanslsn_replication_subscribers";

    /// <summary>The table's definition, in the connection's current schema.</summary>
    internal static readonly string CreateTableSql = CreateTableSqlFor(TableName);

    /// <summary>The table's definition under <paramref name="qualifiedName"/> (what <c>database-roles</c> runs, with its schema).</summary>
    internal static string CreateTableSqlFor(string qualifiedName) =>
        "CREATE TABLE IF NOT EXISTS " + qualifiedName + " (slot_name text NOT NULL, subscriber text NOT NULL, "
        + "subscribed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (slot_name, subscriber))";

    private volatile string? _unavailable;
    private volatile string? _connectionString;

    /// <summary>The primary the pump streams from now (pinned to its host), for <see cref="AddAsync"/> and <see cref="RemoveAsync"/>.</summary>
    internal string? ConnectionString
    {
        get => _connectionString;
        set => _connectionString = value;
    }

    /// <summary>Why subscribers are not remembered (the table is missing and may not be created), or <see langword="null"/>.</summary>
    internal string? Unavailable => _unavailable;

    /// <summary>
    /// Makes sure the table exists (creating it if the role may) and returns the subscribers remembered for
    /// <paramref name="slot"/>; when <paramref name="slotIsNew"/>, those are of an earlier slot of the same name and are
    /// forgotten instead. Returns an empty list when the registry is unavailable.
    /// </summary>
    internal async Task<IReadOnlyList<string>> LoadAsync(NpgsqlConnection admin, string slot, bool slotIsNew, CancellationToken cancellationToken)
    {
        try
        {
            return await LoadCoreAsync(admin, slot, slotIsNew, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            _unavailable = $"role may not read or write table {TableName} ({e.SqlState}: {e.MessageText}); run 'database-roles --apply', which grants the silo role SELECT, INSERT and DELETE on it";
            return [];
        }
    }

    private async Task<IReadOnlyList<string>> LoadCoreAsync(NpgsqlConnection admin, string slot, bool slotIsNew, CancellationToken cancellationToken)
    {
        await using (var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", admin))
        {
            exists.Parameters.Add(new NpgsqlParameter { Value = TableName });
            if (!(bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
            {
                try
                {
                    await using var create = new NpgsqlCommand(CreateTableSql, admin);
                    await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
                {
                    _unavailable = $"table {TableName} is missing and role may not create it ({e.SqlState}: {e.MessageText}); run 'database-roles --apply', which creates it";
                    return [];
                }
                catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateTable)
                {
                    // Created by another pump at the same moment: there it is.
                }
            }
        }

        _unavailable = null;
        if (slotIsNew)
        {
            await using var forget = new NpgsqlCommand($"DELETE FROM {TableName} WHERE slot_name = $1", admin);
            forget.Parameters.Add(new NpgsqlParameter { Value = slot });
            await forget.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return [];
        }

        await using var select = new NpgsqlCommand($"SELECT subscriber FROM {TableName} WHERE slot_name = $1 ORDER BY subscribed_at", admin);
        select.Parameters.Add(new NpgsqlParameter { Value = slot });
        var names = new List<string>();
        await using NpgsqlDataReader reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    /// <summary>Remembers <paramref name="subscriber"/> of <paramref name="slot"/> (idempotent).</summary>
    internal Task AddAsync(string slot, string subscriber, CancellationToken cancellationToken) =>
        ExecuteAsync($"INSERT INTO {TableName} (slot_name, subscriber) VALUES ($1, $2) ON CONFLICT DO NOTHING", slot, subscriber, cancellationToken);

    /// <summary>Forgets <paramref name="subscriber"/> of <paramref name="slot"/> (idempotent).</summary>
    internal Task RemoveAsync(string slot, string subscriber, CancellationToken cancellationToken) =>
        ExecuteAsync($"DELETE FROM {TableName} WHERE slot_name = $1 AND subscriber = $2", slot, subscriber, cancellationToken);

    private async Task ExecuteAsync(string sql, string slot, string subscriber, CancellationToken cancellationToken)
    {
        if (_unavailable is not null || _connectionString is not { } connectionString)
        {
            return;
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = slot });
        command.Parameters.Add(new NpgsqlParameter { Value = subscriber });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
