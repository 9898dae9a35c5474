using Npgsql;
using NpgsqlTypes;

namespace OrleansLsn.Tracking;

/// <summary>
/// Reads the replay position of one server over one dedicated, unpooled connection with a prepared statement. Owned by
/// the tracker's watch loop; not thread-safe.
/// </summary>
internal sealed class PostgresReplayReader : IAsyncDisposable
{
    // CASE does not evaluate the branch it does not take, and pg_current_wal_lsn() raises an error during recovery.
    private const string Sql =
        "select pg_is_in_recovery(), case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end";

    private readonly string _connectionString;
    private NpgsqlConnection? _connection;
    private NpgsqlCommand? _command;

    internal PostgresReplayReader(string connectionString, string region)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            // One long-lived connection: a pool would only hide a broken socket after a server restart.
            Pooling = false,
            ApplicationName = $"orleanslsn-tracker:{region}",
            // On a poll timeout, drop the connection at once instead of waiting for the server to answer the cancel
            // request: a hung server would not answer it, and the loop reconnects anyway.
            CancellationTimeout = -1,
        };
        _connectionString = builder.ConnectionString;
        Endpoint = $"{builder.Host}:{builder.Port}/{builder.Database}";
    }

    /// <summary>host:port/database, safe to log (no credentials).</summary>
    internal string Endpoint { get; }

    internal bool IsOpen => _connection is not null;

    internal async ValueTask<ReplayPosition> ReadAsync(CancellationToken cancellationToken)
    {
        if (_command is null)
        {
            var connection = new NpgsqlConnection(_connectionString);
            try
            {
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                var command = new NpgsqlCommand(Sql, connection);
                await command.PrepareAsync(cancellationToken).ConfigureAwait(false);
                _connection = connection;
                _command = command;
            }
            catch
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        await using NpgsqlDataReader reader = await _command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException("The replay position query returned no row.");
        }

        bool inRecovery = reader.GetBoolean(0);
        Lsn? lsn = reader.IsDBNull(1) ? null : new Lsn((ulong)reader.GetFieldValue<NpgsqlLogSequenceNumber>(1));
        return new ReplayPosition(!inRecovery, lsn);
    }

    /// <summary>Drops the connection after a failure; the next read reconnects.</summary>
    internal async ValueTask ResetAsync()
    {
        NpgsqlConnection? connection = _connection;
        _connection = null;
        _command = null;
        if (connection is not null)
        {
            try
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or InvalidOperationException or NullReferenceException)
            {
                // Closing a broken connection may fail; it is gone either way.
            }
        }
    }

    public ValueTask DisposeAsync() => ResetAsync();
}
