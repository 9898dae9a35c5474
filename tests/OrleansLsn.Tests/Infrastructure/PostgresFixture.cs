using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

[assembly: AssemblyFixture(typeof(PostgresFixture))]

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// One real PostgreSQL primary and hot standby for the whole test run. By default they are started from the machine's
/// binaries (<see cref="LocalPostgresCluster"/>); set <c>ORLEANSLSN_TEST_PRIMARY</c> and <c>ORLEANSLSN_TEST_STANDBY</c>
/// to connection strings to use existing servers instead. A missing PostgreSQL fails every test that needs it.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public const string PrimaryEnvironmentVariable = "ORLEANSLSN_TEST_PRIMARY";
    public const string StandbyEnvironmentVariable = "ORLEANSLSN_TEST_STANDBY";

    private LocalPostgresCluster? _cluster;

    public string PrimaryConnectionString { get; private set; } = "";

    public string StandbyConnectionString { get; private set; } = "";

    /// <summary>The local cluster; <see langword="null"/> when the tests run against existing servers.</summary>
    public LocalPostgresCluster? Cluster => _cluster;

    public async ValueTask InitializeAsync()
    {
        string? primary = Environment.GetEnvironmentVariable(PrimaryEnvironmentVariable);
        string? standby = Environment.GetEnvironmentVariable(StandbyEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(primary) && !string.IsNullOrWhiteSpace(standby))
        {
            PrimaryConnectionString = primary;
            StandbyConnectionString = standby;
        }
        else
        {
            var options = new LocalPostgresOptions { Name = "tests" };
            // Small timeouts keep the timing tests of later issues fast.
            options.Settings["wal_sender_timeout"] = "'2s'";
            _cluster = await LocalPostgresCluster.StartAsync(options);
            PrimaryConnectionString = _cluster.Primary.ConnectionString;
            StandbyConnectionString = _cluster.Standby!.ConnectionString;
        }

        await CheckPrerequisitesAsync();
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    /// <summary>Skips the calling test when it needs to stop or start servers and they are not ours to control.</summary>
    public LocalPostgresCluster RequireLocalCluster() =>
        _cluster ?? throw new InvalidOperationException(
            $"This test stops and starts the standby, which needs the local cluster; unset {PrimaryEnvironmentVariable}/{StandbyEnvironmentVariable}.");

    public Task PauseReplayAsync(CancellationToken cancellationToken) =>
        ReplicaControl.PauseReplayAsync(StandbyConnectionString, cancellationToken);

    public Task ResumeReplayAsync(CancellationToken cancellationToken) =>
        ReplicaControl.ResumeReplayAsync(StandbyConnectionString, cancellationToken);

    public Task WaitForStandbyCatchUpAsync(CancellationToken cancellationToken) =>
        ReplicaControl.WaitForCatchUpAsync(PrimaryConnectionString, StandbyConnectionString, TimeSpan.FromSeconds(30), cancellationToken);

    public async Task<T> ScalarOnPrimaryAsync<T>(string sql, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(PrimaryConnectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    public async Task<T> ScalarOnStandbyAsync<T>(string sql, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(StandbyConnectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(sql, conn);
        return (T)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    private async Task CheckPrerequisitesAsync()
    {
        string walLevel = await ScalarOnPrimaryAsync<string>("show wal_level", CancellationToken.None);
        if (walLevel != "logical")
        {
            throw new InvalidOperationException($"The primary must run with wal_level=logical; it has {walLevel}.");
        }

        bool standbyInRecovery = await ScalarOnStandbyAsync<bool>("select pg_is_in_recovery()", CancellationToken.None);
        if (!standbyInRecovery)
        {
            throw new InvalidOperationException("The standby connection string points at a server that is not in recovery (not a hot standby).");
        }
    }
}
