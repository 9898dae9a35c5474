using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// A throw-away primary (<c>wal_level=logical</c>) and hot standbys of it (<c>pg_basebackup -R</c>), one per name, on
/// the backend the run chose (<see cref="TestPostgres"/>): <see cref="LocalTestPostgresCluster"/> from the machine's
/// binaries, or <see cref="DockerTestPostgresCluster"/> in containers on a Docker network of their own. Tests written
/// against this contract run unchanged on both.
/// </summary>
public interface ITestPostgresCluster : IAsyncDisposable
{
    /// <summary>Which backend runs the servers.</summary>
    TestBackend Backend { get; }

    ITestPostgresServer Primary { get; }

    /// <summary>The standbys, in the order their names were given.</summary>
    IReadOnlyList<ITestPostgresServer> Standbys { get; }

    /// <summary>The standby named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No standby has that name; the message names the standbys there are.</exception>
    ITestPostgresServer GetStandby(string name);

    /// <summary>
    /// What is still there of this cluster (server processes or folders; containers or networks), described for a
    /// failure message; empty once <see cref="IAsyncDisposable.DisposeAsync"/> has removed everything.
    /// </summary>
    Task<IReadOnlyList<string>> FindLeftoversAsync(CancellationToken cancellationToken);
}

/// <summary>Controls every backend offers the same way (they are SQL or go through <see cref="ITestPostgresServer"/>).</summary>
public static class TestPostgresClusterExtensions
{
    private static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(30);

    public static Task PauseReplayAsync(this ITestPostgresCluster cluster, string standbyName, CancellationToken cancellationToken) =>
        ReplicaControl.PauseReplayAsync(cluster.GetStandby(standbyName).ConnectionString, cancellationToken);

    public static Task ResumeReplayAsync(this ITestPostgresCluster cluster, string standbyName, CancellationToken cancellationToken) =>
        ReplicaControl.ResumeReplayAsync(cluster.GetStandby(standbyName).ConnectionString, cancellationToken);

    public static Task StopStandbyAsync(this ITestPostgresCluster cluster, string standbyName, bool immediate, CancellationToken cancellationToken) =>
        cluster.GetStandby(standbyName).StopAsync(immediate, cancellationToken);

    public static Task StartStandbyAsync(this ITestPostgresCluster cluster, string standbyName, CancellationToken cancellationToken) =>
        cluster.GetStandby(standbyName).StartAsync(cancellationToken);

    /// <summary>Stops the primary (<paramref name="immediate"/>: a crash) and starts it again; standbys reconnect by themselves.</summary>
    public static async Task RestartPrimaryAsync(this ITestPostgresCluster cluster, bool immediate, CancellationToken cancellationToken)
    {
        await cluster.Primary.StopAsync(immediate, cancellationToken);
        await cluster.Primary.StartAsync(cancellationToken);
    }

    /// <summary>Waits (30 s at most) until the named standby has replayed what the primary has flushed.</summary>
    public static Task WaitForStandbyCatchUpAsync(this ITestPostgresCluster cluster, string standbyName, CancellationToken cancellationToken) =>
        ReplicaControl.WaitForCatchUpAsync(cluster.Primary.ConnectionString, cluster.GetStandby(standbyName).ConnectionString, CatchUpTimeout, cancellationToken);

    /// <summary>The last <paramref name="maxChars"/> characters of the server's log, for failure messages.</summary>
    public static async Task<string> ReadLogTailAsync(this ITestPostgresServer server, int maxChars = 4000)
    {
        try
        {
            string log = await server.ReadLogAsync(CancellationToken.None);
            return log.Length <= maxChars ? log : log[^maxChars..];
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or HttpRequestException or Docker.DotNet.DockerApiException)
        {
            return $"(log unavailable: {e.Message})";
        }
    }
}
