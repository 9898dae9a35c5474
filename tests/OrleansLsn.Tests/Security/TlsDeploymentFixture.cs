using OrleansLsn.Silo.Local;
using Xunit;

namespace OrleansLsn.Tests.Security;

/// <summary>
/// One silo process of <c>src/Silo</c> (region eu-west, PostgreSQL membership, mutual TLS with the deployment's CA) on
/// its own local primary and standby, with the TLS categories logged at Debug. Nothing else calls it, so its tracker's
/// counters move only by what a test does.
/// </summary>
public sealed class TlsDeploymentFixture : IAsyncLifetime
{
    public const string Region = "eu-west";

    private LocalDeployment? _deployment;

    public LocalDeployment Deployment => _deployment ?? throw new InvalidOperationException("The deployment did not start.");

    public SiloProcess Silo => Deployment.Silos[0];

    public async ValueTask InitializeAsync()
    {
        var options = new LocalDeploymentOptions { Name = "tls-tests", Regions = [Region], SilosPerRegion = 1 };
        options.SiloSettings["Logging:LogLevel:Orleans.Connections.Security"] = "Debug";
        options.SiloSettings["Logging:LogLevel:OrleansLsn"] = "Debug";
        _deployment = await LocalDeployment.StartAsync(options, line => TestContext.Current.SendDiagnosticMessage(line), TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_deployment is not null)
        {
            await _deployment.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TlsDeploymentCollection : ICollectionFixture<TlsDeploymentFixture>
{
    public const string Name = "TLS silo process";
}
