using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;

namespace OrleansLsn.Tests.GrainRuntime;

/// <summary>An in-process silo with the test grains on a free loopback port, hosted by Microsoft.Extensions.Hosting.</summary>
public sealed class SiloHarness : IAsyncDisposable
{
    public const string Secret = "test-cluster-secret-0123456789";

    private readonly IHost _host;

    private SiloHarness(IHost host)
    {
        _host = host;
        Silo = host.Services.GetRequiredService<global::OrleansLsn.Runtime.Silo>();
        Probe = host.Services.GetRequiredService<Probe>();
    }

    public global::OrleansLsn.Runtime.Silo Silo { get; }

    public Probe Probe { get; }

    public string Gateway => $"127.0.0.1:{Silo.EndPoint.Port}";

    public static async Task<SiloHarness> StartAsync(Action<ISiloBuilder>? configure = null, Action<SiloOptions>? options = null)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new CapturingLoggerProvider());
        builder.Services.AddSingleton<Probe>();
        builder.UseOrleansLsn(silo =>
        {
            silo.UseLocalhostClustering(Secret, gatewayPort: 0).AddTestGrains();
            silo.ConfigureGrainCollection(o => o.DeactivationTimeout = TimeSpan.FromSeconds(2));
            if (options is not null)
            {
                silo.Configure(options);
            }

            configure?.Invoke(silo);
        });
        IHost host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch
        {
            // An undisposed host's console lifetime would block the test process's exit.
            host.Dispose();
            throw;
        }

        return new SiloHarness(host);
    }

    public Task<ClusterClient> ConnectAsync(Action<ClientOptions>? configure = null)
    {
        var options = new ClientOptions { ClusterSecret = Secret };
        options.Gateways.Add(Gateway);
        configure?.Invoke(options);
        return ClusterClient.ConnectAsync(options);
    }

    public IReadOnlyList<string> Logs => CapturingLoggerProvider.For(this);

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _host.StopAsync(timeout.Token);
        _host.Dispose();
    }
}
