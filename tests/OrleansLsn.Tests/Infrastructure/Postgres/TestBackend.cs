namespace OrleansLsn.Tests.Infrastructure;

/// <summary>Where the test run's PostgreSQL servers come from (<c>ORLEANSLSN_TEST_BACKEND</c>).</summary>
public enum TestBackend
{
    /// <summary>Servers started from the machine's binaries (<see cref="OrleansLsn.PostgresLocal.LocalPostgresCluster"/>).</summary>
    Local,

    /// <summary>Containers through Testcontainers, on a Docker network of their own.</summary>
    Docker,

    /// <summary>Servers that already run, given by <c>ORLEANSLSN_TEST_PRIMARY</c>/<c>_STANDBY</c>/<c>_STANDBY2</c>.</summary>
    External,
}

/// <summary>The backend a run uses and why; <see cref="Engine"/> is set for <see cref="TestBackend.Docker"/>.</summary>
public sealed record TestBackendChoice(TestBackend Backend, string Reason, DockerEngine? Engine)
{
    public override string ToString() => $"{Backend.ToString().ToLowerInvariant()} ({Reason})";
}
