using Npgsql;
using NpgsqlTypes;

namespace OrleansLsn.Tracking;

/// <summary>
/// Reads the replay position of one server over one dedicated, unpooled connection with a prepared statement. Owned by
/// the tracker's watch loop; not thread-safe.
/// </summary>
internal sealed class PostgresReplayReader
{
    // CASE does not evaluate the branch it does not take, and pg_current_wal_lsn() raises an error during recovery.
    private const string Sql =
        "select pg_is_in_recovery(), case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end";

    private readonly string _connectionString;
    private readonly TimeSpan _openTimeout;
    private readonly CancellationTokenSource _aborted = new();
    private NpgsqlConnection? _connection;
    private NpgsqlCommand? _command;

    internal PostgresReplayReader(string connectionString, string region, TimeSpan queryTimeout)
    {
        // Npgsql's synchronous timeouts are whole seconds.
        int timeoutSeconds = Math.Max(1, (int)Math.Ceiling(queryTimeout.TotalSeconds));
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            CommandTimeout = timeoutSeconds,
            // One long-lived connection: a pool would only hide a broken socket after a server restart.
            Pooling = false,
            ApplicationName = $"orleanslsn-tracker:{region}",
            // On a poll timeout, drop the connection at once instead of waiting for the server to answer the cancel
            // request: a hung server would not answer it, and the loop reconnects anyway.
            CancellationTimeout = -1,
        };
        builder.Timeout = Math.Min(builder.Timeout, timeoutSeconds);
        _openTimeout = TimeSpan.FromSeconds(builder.Timeout);
        _connectionString = builder.ConnectionString;
        Endpoint = $"{builder.Host}:{builder.Port}/{builder.Database}";
    }

    /// <summary>host:port/database, safe to log (no credentials).</summary>
    internal string Endpoint { get; }

    internal bool IsOpen => _connection is not null;

    /// <summary>
    /// One poll, synchronously: the tracker's watch loop owns a thread, and blocking socket reads on it save two thread
    /// hops per poll compared with awaiting. A hung server fails the poll after the command timeout.
    /// </summary>
    internal ReplayPosition Read()
    {
        if (_command is null)
        {
            var connection = new NpgsqlConnection(_connectionString);
            try
            {
                Open(connection);
                var command = new NpgsqlCommand(Sql, connection);
                command.Prepare();
                _connection = connection;
                _command = command;
            }
            catch
            {
                connection.Dispose();
                throw;
            }
        }

        using NpgsqlDataReader reader = _command.ExecuteReader();
        if (!reader.Read())
        {
            throw new InvalidOperationException("The replay position query returned no row.");
        }

        bool inRecovery = reader.GetBoolean(0);
        Lsn? lsn = reader.IsDBNull(1) ? null : new Lsn((ulong)reader.GetFieldValue<NpgsqlLogSequenceNumber>(1));
        return new ReplayPosition(!inRecovery, lsn);
    }

    /// <summary>
    /// Opens <paramref name="connection"/> within the connect timeout. Npgsql's synchronous open does not bound the read
    /// of the server's answer to its TLS request: a server (or proxy) that accepts the connection and never answers held
    /// the watch thread for good (seen in a test under load). The asynchronous open honours its token, so it is used
    /// here and waited for on this thread; reconnects are rare, so the extra hops do not matter.
    /// </summary>
    private void Open(NpgsqlConnection connection)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_aborted.Token);
        timeout.CancelAfter(_openTimeout);
        try
        {
            connection.OpenAsync(timeout.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (!_aborted.IsCancellationRequested)
        {
            throw new TimeoutException($"Connecting to the replica {Endpoint} timed out after {_openTimeout.TotalSeconds:0} s.");
        }
    }

    /// <summary>Drops the connection after a failure; the next read reconnects.</summary>
    internal void Reset()
    {
        NpgsqlConnection? connection = _connection;
        _connection = null;
        _command = null;
        if (connection is not null)
        {
            try
            {
                connection.Dispose();
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or InvalidOperationException or NullReferenceException)
            {
                // Closing a broken connection may fail; it is gone either way.
            }
        }
    }

    /// <summary>Stops a poll in progress from another thread by closing the socket under it (used at shutdown).</summary>
    internal void Abort()
    {
        _aborted.Cancel();
        try
        {
            _connection?.Dispose();
        }
        catch (Exception ex) when (ex is NpgsqlException or IOException or InvalidOperationException or ObjectDisposedException or NullReferenceException)
        {
        }
    }
}
