using Npgsql;
using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Bench.Common;

/// <summary>The primary and hot standby a benchmark runs against: given ones, or a throw-away local cluster it owns.</summary>
internal sealed class PostgresTargets : IAsyncDisposable
{
    private readonly LocalPostgresCluster? _cluster;

    private PostgresTargets(string primary, string standby, string description, LocalPostgresCluster? cluster)
    {
        Primary = primary;
        Standby = standby;
        Description = description;
        _cluster = cluster;
    }

    public string Primary { get; }

    public string Standby { get; }

    /// <summary>Where the servers come from, for the notes.</summary>
    public string Description { get; }

    /// <summary>Uses the given servers, or starts a local primary and standby named <paramref name="name"/>.</summary>
    /// <exception cref="InvalidOperationException">The given standby is not in recovery (the benchmark needs a real standby).</exception>
    public static async Task<PostgresTargets> OpenAsync(BenchSettings settings, string name, CancellationToken cancellationToken)
    {
        if (settings.Primary is { } primary && settings.Standby is { } standby)
        {
            await RequireRecoveryAsync(primary, expected: false, "--primary", cancellationToken).ConfigureAwait(false);
            await RequireRecoveryAsync(standby, expected: true, "--standby", cancellationToken).ConfigureAwait(false);
            return new PostgresTargets(primary, standby, "existing servers given with --primary/--standby", null);
        }

        LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = name }, cancellationToken)
            .ConfigureAwait(false);
        return new PostgresTargets(
            cluster.Primary.ConnectionString,
            cluster.Standby!.ConnectionString,
            "throw-away local primary + hot standby (LocalPostgresCluster, loopback, fsync=off)",
            cluster);
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task RequireRecoveryAsync(string connectionString, bool expected, string option, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("select pg_is_in_recovery()", connection);
        bool inRecovery = (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        if (inRecovery != expected)
        {
            throw new InvalidOperationException(
                $"The server given with {option} is {(inRecovery ? "in recovery (a standby)" : "not in recovery (a primary)")}; expected {(expected ? "a hot standby" : "a primary")}.");
        }
    }
}
