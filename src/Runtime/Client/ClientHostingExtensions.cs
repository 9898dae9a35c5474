using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace OrleansLsn.Runtime;

/// <summary>Configures the client of a host (Orleans: <c>IClientBuilder</c>).</summary>
public interface IClientBuilder
{
    /// <summary>The host's services.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Host registration of the client (Orleans: <c>UseOrleansClient</c>).</summary>
public static class ClientHostingExtensions
{
    /// <summary>Adds a <see cref="ClusterClient"/> that connects when the host starts and closes when it stops.</summary>
    public static IHostBuilder UseOrleansLsnClient(this IHostBuilder builder, Action<IClientBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices((_, services) => services.AddOrleansLsnClient(configure));
    }

    /// <summary>Adds a <see cref="ClusterClient"/> that connects when the host starts and closes when it stops.</summary>
    public static IHostApplicationBuilder UseOrleansLsnClient(this IHostApplicationBuilder builder, Action<IClientBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOrleansLsnClient(configure);
        return builder;
    }

    /// <summary>The core registration; idempotent. Options are validated when the host starts.</summary>
    public static IServiceCollection AddOrleansLsnClient(this IServiceCollection services, Action<IClientBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        configure(new ClientBuilder(services));
        services.AddOptions<ClientOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClientOptions>, ClientOptionsValidator>());
        services.TryAddSingleton<ClusterClient>();
        services.TryAddSingleton<IClusterClient>(sp => sp.GetRequiredService<ClusterClient>());
        services.TryAddSingleton<IGrainFactory>(sp => sp.GetRequiredService<ClusterClient>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ClusterClientHostedService>());
        return services;
    }

    /// <summary>Configures <see cref="ClientOptions"/>.</summary>
    public static IClientBuilder Configure(this IClientBuilder builder, Action<ClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>Sets the cluster, its secret and the gateways.</summary>
    public static IClientBuilder UseGateways(this IClientBuilder builder, string clusterId, string clusterSecret, params string[] gateways) =>
        builder.Configure(o =>
        {
            o.ClusterId = clusterId;
            o.ClusterSecret = clusterSecret;
            foreach (string gateway in gateways)
            {
                o.Gateways.Add(gateway);
            }
        });

    private sealed class ClientBuilder(IServiceCollection services) : IClientBuilder
    {
        public IServiceCollection Services { get; } = services;
    }

    private sealed class ClusterClientHostedService(ClusterClient client) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => client.ConnectAsync(cancellationToken);

        public async Task StopAsync(CancellationToken cancellationToken) => await client.DisposeAsync().ConfigureAwait(false);
    }
}
