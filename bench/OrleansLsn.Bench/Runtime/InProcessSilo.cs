using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// A silo with the benchmark's grains in this process, hosted by Microsoft.Extensions.Hosting on a free loopback port,
/// and one client connected to it through the gateway (real TCP, same as a remote client).
/// </summary>
internal sealed class InProcessSilo : IAsyncDisposable
{
    private const string Secret = "orleanslsn-bench-cluster-secret";
    private const string ClusterId = "dev";

    private readonly IHost _host;
    private readonly ILoggerFactory _clientLogging;

    private InProcessSilo(IHost host, ClusterClient client, ILoggerFactory clientLogging, LogCapture logs)
    {
        _host = host;
        Client = client;
        _clientLogging = clientLogging;
        Logs = logs;
        Silo = host.Services.GetRequiredService<Silo>();
    }

    public Silo Silo { get; }

    public ClusterClient Client { get; }

    /// <summary>Warnings and errors of the silo and the client.</summary>
    public LogCapture Logs { get; }

    /// <summary>Starts the silo, then connects the client with <paramref name="responseTimeout"/> as its call timeout.</summary>
    public static async Task<InProcessSilo> StartAsync(TimeSpan responseTimeout, CancellationToken cancellationToken)
    {
        var logs = new LogCapture();
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddProvider(logs);
        builder.UseOrleansLsn(silo => silo
            .UseLocalhostClustering(Secret, gatewayPort: 0, ClusterId)
            .AddGrain<PingGrain>()
            .AddGrain<PushPublisherGrain>());
        IHost host = builder.Build();
        ILoggerFactory? clientLogging = null;
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            int port = host.Services.GetRequiredService<Silo>().EndPoint.Port;
            clientLogging = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddProvider(logs));
            var options = new ClientOptions { ClusterId = ClusterId, ClusterSecret = Secret, ResponseTimeout = responseTimeout };
            options.Gateways.Add($"127.0.0.1:{port}");
            ClusterClient client = await ClusterClient.ConnectAsync(options, clientLogging, cancellationToken).ConfigureAwait(false);
            return new InProcessSilo(host, client, clientLogging, logs);
        }
        catch
        {
            clientLogging?.Dispose();
            await StopHostAsync(host).ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync().ConfigureAwait(false);
        _clientLogging.Dispose();
        await StopHostAsync(_host).ConfigureAwait(false);
    }

    private static async Task StopHostAsync(IHost host)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await host.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        finally
        {
            host.Dispose();
        }
    }
}
