using System.Diagnostics;
using Npgsql;

namespace OrleansLsn.Bench.Replication;

/// <summary>The SQL the scenarios share: setting up and dropping tables, publications and slots, and reading WAL positions.</summary>
internal static class ReplicationSql
{
    /// <summary>Long enough for a 1M-row insert or a 32 MB chunk on a slow disk.</summary>
    private const int CommandTimeoutSeconds = 600;

    public static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        await using NpgsqlCommand command = Command(connection, sql, parameters);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken cancellationToken, params object[] parameters)
    {
        await using NpgsqlCommand command = Command(connection, sql, parameters);
        object? value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is T typed ? typed : throw new InvalidOperationException($"'{sql}' returned {value ?? "null"}, expected a {typeof(T).Name}.");
    }

    /// <summary><c>pg_current_wal_lsn()</c>: the end of what is written, so at or past every commit that has returned.</summary>
    public static async Task<Lsn> CurrentWalLsnAsync(NpgsqlConnection connection, CancellationToken cancellationToken) =>
        Lsn.Parse(await ScalarAsync<string>(connection, "select pg_current_wal_lsn()::text", cancellationToken).ConfigureAwait(false));

    /// <summary>Creates a pgoutput slot now, so that it streams every change committed after this call.</summary>
    public static Task CreateSlotAsync(NpgsqlConnection connection, string slot, CancellationToken cancellationToken) =>
        ExecuteAsync(connection, "select pg_create_logical_replication_slot($1, 'pgoutput')", cancellationToken, slot);

    /// <summary>
    /// Drops the slots, publications and tables (names are the benchmark's own constants), waiting up to 30 s for a slot
    /// whose walsender is still exiting.
    /// </summary>
    /// <exception cref="TimeoutException">A slot stayed active for 30 s.</exception>
    public static async Task DropAsync(
        NpgsqlConnection connection, IEnumerable<string> slots, IEnumerable<string> publications, IEnumerable<string> tables, CancellationToken cancellationToken)
    {
        foreach (string slot in slots)
        {
            await DropSlotAsync(connection, slot, cancellationToken).ConfigureAwait(false);
        }

        foreach (string publication in publications)
        {
            await ExecuteAsync(connection, $"drop publication if exists {publication}", cancellationToken).ConfigureAwait(false);
        }

        foreach (string table in tables)
        {
            await ExecuteAsync(connection, $"drop table if exists {table}", cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task DropSlotAsync(NpgsqlConnection connection, string slot, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            await using NpgsqlCommand query = Command(connection, "select active_pid from pg_replication_slots where slot_name = $1", [slot]);
            object? row = await query.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            if (row is null)
            {
                return;
            }

            if (row is DBNull)
            {
                await ExecuteAsync(connection, "select pg_drop_replication_slot($1)", cancellationToken, slot).ConfigureAwait(false);
                return;
            }

            if (Stopwatch.GetElapsedTime(start) > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"Replication slot {slot} is still in use by walsender {row} after 30 s; it was not dropped.");
            }

            // The consumer just disconnected and its walsender is still exiting.
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
        }
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, object[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection) { CommandTimeout = CommandTimeoutSeconds };
        foreach (object parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        }

        return command;
    }
}
