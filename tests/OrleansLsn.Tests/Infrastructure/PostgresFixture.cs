using System.Diagnostics;
using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

[assembly: AssemblyFixture(typeof(PostgresFixture))]

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// One real PostgreSQL primary and two hot standbys of it (one per region, as the system runs) for the whole test run,
/// on the run's backend (<see cref="TestPostgres"/>, <c>ORLEANSLSN_TEST_BACKEND</c>): containers through Testcontainers
/// when a Docker engine answers, else servers from the machine's binaries, the standbys named <see cref="StandbyName"/>
/// and <see cref="Standby2Name"/>. Set <c>ORLEANSLSN_TEST_PRIMARY</c> and <c>ORLEANSLSN_TEST_STANDBY</c> (and optionally
/// <c>ORLEANSLSN_TEST_STANDBY2</c>) to connection strings to use existing servers instead; without a second standby,
/// <see cref="Standby2ConnectionString"/> is the first standby's and <see cref="HasSecondStandby"/> is
/// <see langword="false"/>. A backend that cannot start fails every test that needs it, with the reason.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public const string PrimaryEnvironmentVariable = "ORLEANSLSN_TEST_PRIMARY";
    public const string StandbyEnvironmentVariable = "ORLEANSLSN_TEST_STANDBY";
    public const string Standby2EnvironmentVariable = "ORLEANSLSN_TEST_STANDBY2";

    /// <summary>The first standby's name in the local cluster (its <c>application_name</c> on the primary).</summary>
    public const string StandbyName = LocalPostgresOptions.DefaultStandbyName;

    /// <summary>The second standby's name in the local cluster.</summary>
    public const string Standby2Name = "standby2";

    private ITestPostgresCluster? _cluster;

    public string PrimaryConnectionString { get; private set; } = "";

    public string StandbyConnectionString { get; private set; } = "";

    /// <summary>The second standby; the first one's connection string when <see cref="HasSecondStandby"/> is false.</summary>
    public string Standby2ConnectionString { get; private set; } = "";

    /// <summary>
    /// Whether <see cref="Standby2ConnectionString"/> is a standby of its own: always with the local cluster; with
    /// existing servers only when <c>ORLEANSLSN_TEST_STANDBY2</c> is set.
    /// </summary>
    public bool HasSecondStandby { get; private set; }

    /// <summary>The cluster the fixture started; <see langword="null"/> when the tests run against existing servers.</summary>
    public ITestPostgresCluster? Cluster => _cluster;

    /// <summary>The primary's <c>server_version_num</c> (e.g. 170010), read at start.</summary>
    public int ServerVersionNum { get; private set; }

    /// <summary>The primary's major version (e.g. 17).</summary>
    public int ServerMajorVersion => ServerVersionNum / 10000;

    /// <summary>The run's backend and why it was chosen.</summary>
    public TestBackendChoice Backend { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        string? primary = Environment.GetEnvironmentVariable(PrimaryEnvironmentVariable);
        string? standby = Environment.GetEnvironmentVariable(StandbyEnvironmentVariable);
        string? standby2 = Environment.GetEnvironmentVariable(Standby2EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(primary) != string.IsNullOrWhiteSpace(standby) || (string.IsNullOrWhiteSpace(primary) && !string.IsNullOrWhiteSpace(standby2)))
        {
            throw new InvalidOperationException(
                $"Set {PrimaryEnvironmentVariable} and {StandbyEnvironmentVariable} (and optionally {Standby2EnvironmentVariable}) to use existing servers, or none of them.");
        }

        Backend = await TestPostgres.GetBackendAsync();
        TestContext.Current.SendDiagnosticMessage($"PostgresFixture: backend {Backend}");
        if (Backend.Backend == TestBackend.External)
        {
            PrimaryConnectionString = primary!;
            StandbyConnectionString = standby!;
            HasSecondStandby = !string.IsNullOrWhiteSpace(standby2);
            Standby2ConnectionString = HasSecondStandby ? standby2! : standby!;
        }
        else
        {
            var options = new TestPostgresClusterOptions { Name = "tests", StandbyNames = [StandbyName, Standby2Name] };
            // Small timeouts keep the timing tests of later issues fast.
            options.Settings["wal_sender_timeout"] = "'2s'";
            var started = Stopwatch.StartNew();
            _cluster = await TestPostgres.StartClusterAsync(options, CancellationToken.None);
            TestContext.Current.SendDiagnosticMessage(
                $"PostgresFixture: primary + {_cluster.Standbys.Count} standbys ready in {started.Elapsed.TotalSeconds:0.00} s on the {Backend.Backend.ToString().ToLowerInvariant()} backend");
            PrimaryConnectionString = _cluster.Primary.ConnectionString;
            StandbyConnectionString = _cluster.GetStandby(StandbyName).ConnectionString;
            Standby2ConnectionString = _cluster.GetStandby(Standby2Name).ConnectionString;
            HasSecondStandby = true;
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

    /// <summary>The fixture's cluster, for a test that stops and starts its servers; fails against existing servers, which are not ours to control.</summary>
    public ITestPostgresCluster RequireCluster() =>
        _cluster ?? throw new InvalidOperationException(
            $"This test stops and starts a standby or reads the standbys' names, which needs a cluster the fixture started (docker or local backend); unset {PrimaryEnvironmentVariable}/{StandbyEnvironmentVariable}/{Standby2EnvironmentVariable}.");

    /// <summary>Pauses replay on the first standby.</summary>
    public Task PauseReplayAsync(CancellationToken cancellationToken) =>
        PauseReplayAsync(StandbyConnectionString, cancellationToken);

    /// <summary>Pauses replay on the standby at <paramref name="standbyConnectionString"/> (e.g. <see cref="Standby2ConnectionString"/>).</summary>
    public Task PauseReplayAsync(string standbyConnectionString, CancellationToken cancellationToken) =>
        ReplicaControl.PauseReplayAsync(standbyConnectionString, cancellationToken);

    /// <summary>Resumes replay on the first standby.</summary>
    public Task ResumeReplayAsync(CancellationToken cancellationToken) =>
        ResumeReplayAsync(StandbyConnectionString, cancellationToken);

    /// <summary>Resumes replay on the standby at <paramref name="standbyConnectionString"/>.</summary>
    public Task ResumeReplayAsync(string standbyConnectionString, CancellationToken cancellationToken) =>
        ReplicaControl.ResumeReplayAsync(standbyConnectionString, cancellationToken);

    /// <summary>Waits (30 s at most) until the first standby has replayed what the primary has flushed.</summary>
    public Task WaitForStandbyCatchUpAsync(CancellationToken cancellationToken) =>
        WaitForStandbyCatchUpAsync(StandbyConnectionString, cancellationToken);

    /// <summary>Waits (30 s at most) until the standby at <paramref name="standbyConnectionString"/> has replayed what the primary has flushed.</summary>
    public Task WaitForStandbyCatchUpAsync(string standbyConnectionString, CancellationToken cancellationToken) =>
        ReplicaControl.WaitForCatchUpAsync(PrimaryConnectionString, standbyConnectionString, TimeSpan.FromSeconds(30), cancellationToken);

    public Task<T> ScalarOnPrimaryAsync<T>(string sql, CancellationToken cancellationToken) =>
        ScalarAsync<T>(PrimaryConnectionString, sql, cancellationToken);

    public Task<T> ScalarOnStandbyAsync<T>(string sql, CancellationToken cancellationToken) =>
        ScalarAsync<T>(StandbyConnectionString, sql, cancellationToken);

    /// <summary>Runs <paramref name="sql"/> on the server at <paramref name="connectionString"/> and returns the first column of the first row.</summary>
    public static async Task<T> ScalarAsync<T>(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
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

        ServerVersionNum = int.Parse(await ScalarOnPrimaryAsync<string>("show server_version_num", CancellationToken.None), System.Globalization.CultureInfo.InvariantCulture);
        string version = await ScalarOnPrimaryAsync<string>("show server_version", CancellationToken.None);
        // Names the version in every run's output (the CI matrix runs the suite's core on several).
        TestContext.Current.SendDiagnosticMessage($"PostgresFixture: PostgreSQL {version} (server_version_num {ServerVersionNum})");

        foreach ((string which, string connectionString) in new[] { ("standby", StandbyConnectionString), ("second standby", Standby2ConnectionString) })
        {
            bool inRecovery = await ScalarAsync<bool>(connectionString, "select pg_is_in_recovery()", CancellationToken.None);
            if (!inRecovery)
            {
                throw new InvalidOperationException(
                    $"The {which} connection string points at a server that is not in recovery (not a hot standby).");
            }
        }
    }
}
