namespace OrleansLsn.Tests.Infrastructure;

/// <summary>One PostgreSQL server of a test cluster, on either backend (local binaries or a Docker container).</summary>
public interface ITestPostgresServer
{
    /// <summary><c>primary</c>, or the standby's name (its <c>application_name</c> on the primary).</summary>
    string Name { get; }

    /// <summary>The <c>postgres</c> superuser over TCP on loopback; the same across a stop and start.</summary>
    string ConnectionString { get; }

    /// <summary>Whether the server was last started (and not since stopped) through this object.</summary>
    bool IsRunning { get; }

    /// <summary>
    /// Stops the server: <paramref name="immediate"/> simulates a crash (local: <c>pg_ctl -m immediate</c>; Docker:
    /// <c>docker kill</c>), otherwise a fast shutdown (<c>pg_ctl -m fast</c>; <c>docker stop</c>). Returns once it is down.
    /// </summary>
    Task StopAsync(bool immediate, CancellationToken cancellationToken);

    /// <summary>Starts the server again (local: <c>pg_ctl start</c>; Docker: <c>docker start</c>) and waits until it accepts connections.</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>The server's log so far (local: its log file; Docker: the container's output).</summary>
    Task<string> ReadLogAsync(CancellationToken cancellationToken);
}
