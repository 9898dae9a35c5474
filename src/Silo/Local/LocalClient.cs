using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Connections.Security;
using OrleansLsn.Silo.Hosting;

namespace OrleansLsn.Silo.Local;

/// <summary>
/// An ordinary Orleans client of a <see cref="LocalDeployment"/>: gateways from the membership table in PostgreSQL,
/// mutual TLS with the deployment's client certificate.
/// </summary>
public sealed class LocalClient : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly ClusterCertificates _certificates;

    private LocalClient(IHost host, ClusterCertificates certificates)
    {
        _host = host;
        _certificates = certificates;
    }

    public IClusterClient Cluster => _host.Services.GetRequiredService<IClusterClient>();

    public IServiceProvider Services => _host.Services;

    public static async Task<LocalClient> ConnectAsync(IReadOnlyDictionary<string, string?> settings, CancellationToken cancellationToken, LogLevel logLevel = LogLevel.Warning)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var tls = new ClusterTlsOptions();
        configuration.GetSection("OrleansLsn:Tls").Bind(tls);
        var failures = new List<string>();
        ClusterCertificates certificates = ClusterCertificates.TryLoad(tls, "OrleansLsn:Tls:", failures)
            ?? throw new InvalidOperationException(string.Join(" ", failures));
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(logLevel);
        builder.UseOrleansClient(client =>
        {
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = configuration["OrleansLsn:ClusterId"]!;
                o.ServiceId = configuration["OrleansLsn:ServiceId"]!;
            });
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = configuration["OrleansLsn:MembershipConnectionString"]!;
            });
            client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = FastFailureDetection.GatewayListRefreshPeriod);
            client.Configure<ClientMessagingOptions>(o => o.CancelRequestOnTimeout = true);
            client.UseTls(certificates.Certificate, o =>
            {
                o.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
                o.RemoteCertificateValidation = (certificate, _, _) => certificates.IsTrusted(certificate);
            });
        });
        IHost host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            host.Dispose();
            certificates.Dispose();
            throw;
        }

        return new LocalClient(host, certificates);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _host.Dispose();
            _certificates.Dispose();
        }
    }
}
