using System.Globalization;
using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Replication;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// The primary the replication benchmark streams from: a given one, or a throw-away local primary (no standby) with
/// <c>wal_sender_timeout=2s</c>, which it owns.
/// </summary>
internal sealed class ReplicationServer : IAsyncDisposable
{
    /// <summary><c>wal_sender_timeout</c> of the local primary: short, so that a pause that fails to keep the connection alive shows within seconds.</summary>
    public const string LocalWalSenderTimeout = "2s";

    private readonly LocalPostgresCluster? _cluster;

    private ReplicationServer(string connectionString, string? logFile, string description, LocalPostgresCluster? cluster)
    {
        ConnectionString = connectionString;
        LogFile = logFile;
        Description = description;
        _cluster = cluster;
    }

    public string ConnectionString { get; }

    /// <summary>The server log, or <see langword="null"/> for a given server (its log is not read).</summary>
    public string? LogFile { get; }

    /// <summary>Where the server comes from, for the notes.</summary>
    public string Description { get; }

    /// <summary>The server's <c>wal_sender_timeout</c> (zero when disabled).</summary>
    public TimeSpan WalSenderTimeout { get; private set; }

    /// <summary><c>server_version_num</c>.</summary>
    public int VersionNumber { get; private set; }

    /// <summary>Uses the given primary, or starts a local one named <paramref name="name"/>.</summary>
    /// <exception cref="InvalidOperationException">The server is a standby, or its <c>wal_level</c> is not <c>logical</c>.</exception>
    public static async Task<ReplicationServer> OpenAsync(string? primary, string name, CancellationToken cancellationToken)
    {
        ReplicationServer server;
        if (primary is not null)
        {
            server = new ReplicationServer(primary, null, "existing primary given with --primary (its server log is not read)", null);
        }
        else
        {
            var options = new LocalPostgresOptions { Name = name, WithStandby = false };
            options.Settings["wal_sender_timeout"] = $"'{LocalWalSenderTimeout}'";

            // The 1 GB backlog plus the throughput workload stay below this, so no checkpoint is forced mid-measurement.
            options.Settings["max_wal_size"] = "'4GB'";
            LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(options, cancellationToken).ConfigureAwait(false);
            server = new ReplicationServer(
                cluster.Primary.ConnectionString,
                cluster.Primary.LogFile,
                $"throw-away local primary without standby (LocalPostgresCluster, loopback, fsync=off, wal_sender_timeout={LocalWalSenderTimeout}, max_wal_size=4GB)",
                cluster);
        }

        try
        {
            await server.CheckAsync(cancellationToken).ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task CheckAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            "select pg_is_in_recovery(), current_setting('wal_level'), current_setting('wal_sender_timeout'), current_setting('server_version_num')::int",
            connection);
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (reader.GetBoolean(0))
        {
            throw new InvalidOperationException("The server given with --primary is in recovery (a standby); logical replication needs the primary.");
        }

        string walLevel = reader.GetString(1);
        if (walLevel != "logical")
        {
            throw new InvalidOperationException($"The primary has wal_level={walLevel}; the replication benchmark needs wal_level=logical.");
        }

        WalSenderTimeout = ReplicationPump.ParsePostgresDuration(reader.GetString(2));
        VersionNumber = reader.GetInt32(3);
        if (VersionNumber < 140000)
        {
            throw new InvalidOperationException(
                $"The primary runs PostgreSQL {(VersionNumber / 10000).ToString(CultureInfo.InvariantCulture)}; the pump needs 14 or later.");
        }
    }
}
