using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using OrleansLsn.Hosting;

namespace OrleansLsn.Silo;

/// <summary>
/// The demo's cluster: one Orleans silo (localhost clustering, real TCP on free ports) configured through the
/// <c>OrleansLsn</c> section like any silo, and a separate Orleans client host connected to its gateway.
/// </summary>
internal sealed class DemoCluster : IAsyncDisposable
{
    private readonly IHost _silo;
    private readonly IHost _client;

    private DemoCluster(IHost silo, IHost client, int gatewayPort)
    {
        _silo = silo;
        _client = client;
        GatewayPort = gatewayPort;
    }

    public int GatewayPort { get; }

    public IClusterClient Client => _client.Services.GetRequiredService<IClusterClient>();

    public static async Task<DemoCluster> StartAsync(IReadOnlyDictionary<string, string?> settings, CancellationToken cancellationToken)
    {
        int siloPort = FreePort();
        int gatewayPort = FreePort();
        HostApplicationBuilder siloBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        siloBuilder.Configuration.AddInMemoryCollection(settings);
        siloBuilder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Orleans.Runtime.Silo", LogLevel.Error); // its ServerGC advice does not apply to a demo
        siloBuilder.UseOrleans(silo => silo
            .UseLocalhostClustering(siloPort, gatewayPort, serviceId: "orleanslsn-demo", clusterId: "orleanslsn-demo")
            .AddOrleansLsn(siloBuilder.Configuration));
        IHost siloHost = siloBuilder.Build();
        await siloHost.StartAsync(cancellationToken);

        HostApplicationBuilder clientBuilder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        clientBuilder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        clientBuilder.UseOrleansClient(client => client
            .UseLocalhostClustering(gatewayPort, serviceId: "orleanslsn-demo", clusterId: "orleanslsn-demo")
            .Configure<ClientMessagingOptions>(o => o.CancelRequestOnTimeout = true));
        IHost clientHost = clientBuilder.Build();
        try
        {
            await clientHost.StartAsync(cancellationToken);
        }
        catch
        {
            clientHost.Dispose();
            await siloHost.StopAsync(CancellationToken.None);
            siloHost.Dispose();
            throw;
        }

        return new DemoCluster(siloHost, clientHost, gatewayPort);
    }

    public async ValueTask DisposeAsync()
    {
        await _client.StopAsync(CancellationToken.None);
        _client.Dispose();
        await _silo.StopAsync(CancellationToken.None);
        _silo.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
