using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace OrleansLsn.Runtime;

/// <summary>Configures the silo of a host (Orleans: <c>ISiloBuilder</c>).</summary>
public interface ISiloBuilder
{
    /// <summary>The host's services; grains get their constructor arguments from here.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Host registration of a silo (Orleans: <c>UseOrleans</c>).</summary>
public static class SiloHostingExtensions
{
    /// <summary>Runs a silo in this host.</summary>
    public static IHostBuilder UseOrleansLsn(this IHostBuilder builder, Action<ISiloBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices((_, services) => services.AddOrleansLsnSilo(configure));
    }

    /// <summary>Runs a silo in this host.</summary>
    public static IHostApplicationBuilder UseOrleansLsn(this IHostApplicationBuilder builder, Action<ISiloBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOrleansLsnSilo(configure);
        return builder;
    }

    /// <summary>The core registration; idempotent apart from what <paramref name="configure"/> adds. Options are validated at start.</summary>
    public static IServiceCollection AddOrleansLsnSilo(this IServiceCollection services, Action<ISiloBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        configure(new SiloBuilder(services));
        services.AddOptions<SiloOptions>().ValidateOnStart();
        services.AddOptions<GrainCollectionOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SiloOptions>, SiloOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GrainCollectionOptions>, SiloOptionsValidator>());
        services.TryAddSingleton(sp => new Silo(
            sp.GetRequiredService<IOptions<SiloOptions>>(),
            sp.GetRequiredService<IOptions<GrainCollectionOptions>>(),
            sp.GetServices<GrainClassRegistration>(),
            sp,
            sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>(),
            sp.GetService<TimeProvider>()));
        services.TryAddSingleton<IGrainFactory>(sp => sp.GetRequiredService<Silo>().GrainFactory);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, SiloHostedService>());
        return services;
    }

    /// <summary>Configures <see cref="SiloOptions"/>.</summary>
    public static ISiloBuilder Configure(this ISiloBuilder builder, Action<SiloOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>Configures idle collection.</summary>
    public static ISiloBuilder ConfigureGrainCollection(this ISiloBuilder builder, Action<GrainCollectionOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>A single silo on loopback (Orleans: <c>UseLocalhostClustering</c>). Port 0 picks a free port.</summary>
    public static ISiloBuilder UseLocalhostClustering(this ISiloBuilder builder, string clusterSecret, int gatewayPort = 30000, string clusterId = "dev") =>
        builder.Configure(o =>
        {
            o.ClusterSecret = clusterSecret;
            o.GatewayPort = gatewayPort;
            o.ClusterId = clusterId;
            o.ListenAddress = System.Net.IPAddress.Loopback;
        });

    /// <summary>Registers a grain class for the grain interfaces it implements.</summary>
    public static ISiloBuilder AddGrain<TGrain>(this ISiloBuilder builder)
        where TGrain : Grain => builder.AddGrain(typeof(TGrain));

    /// <summary>Registers a grain class for the grain interfaces it implements.</summary>
    public static ISiloBuilder AddGrain(this ISiloBuilder builder, Type grainType)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(new GrainClassRegistration(grainType));
        return builder;
    }

    /// <summary>Registers every concrete grain class of an assembly.</summary>
    public static ISiloBuilder AddGrains(this ISiloBuilder builder, Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        foreach (Type type in assembly.GetTypes().Where(t => typeof(Grain).IsAssignableFrom(t) && !t.IsAbstract && !t.IsGenericTypeDefinition))
        {
            builder.AddGrain(type);
        }

        return builder;
    }

    private sealed class SiloBuilder(IServiceCollection services) : ISiloBuilder
    {
        public IServiceCollection Services { get; } = services;
    }

    private sealed class SiloHostedService(Silo silo) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => silo.StartAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => silo.StopAsync(cancellationToken);
    }
}
