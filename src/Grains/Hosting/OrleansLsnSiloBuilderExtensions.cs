using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime.MembershipService.SiloMetadata;
using OrleansLsn.Placement;
using OrleansLsn.Replication;

namespace OrleansLsn.Hosting;

/// <summary>Registers OrleansLsn's grains, placement and options on an Orleans silo.</summary>
public static class OrleansLsnSiloBuilderExtensions
{
    /// <summary>
    /// Adds OrleansLsn to the silo with its options bound from the <c>OrleansLsn</c> section of
    /// <paramref name="configuration"/> (appsettings.json, <c>OrleansLsn__*</c> environment variables, command line).
    /// The options are validated when the silo starts: with any problem it does not start, and the exception lists every
    /// problem with its key. Connection strings may come from files (<c>PrimaryConnectionStringFile</c>,
    /// <c>ReplicaConnectionStringFile</c>), read once when the options are built. It also turns on Orleans' activity
    /// propagation (<c>AddActivityPropagation</c>, unless already on), so a client's trace continues in the grains; the
    /// tracker's spans are in the source <see cref="OrleansLsnActivitySources.Tracker"/>. Calling it again changes nothing.
    /// </summary>
    public static ISiloBuilder AddOrleansLsn(this ISiloBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        IConfigurationSection section = configuration.GetSection(OrleansLsnOptions.SectionName);
        return builder.AddOrleansLsnCore(options => section.Bind(options));
    }

    /// <summary>Adds OrleansLsn to the silo with options set in code; see <see cref="AddOrleansLsn(ISiloBuilder, IConfiguration)"/>.</summary>
    public static ISiloBuilder AddOrleansLsn(this ISiloBuilder builder, Action<OrleansLsnOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return builder.AddOrleansLsnCore(configure);
    }

    private static ISiloBuilder AddOrleansLsnCore(this ISiloBuilder builder, Action<OrleansLsnOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(Marker)))
        {
            return builder;
        }

        services.AddSingleton<Marker>();
        services.AddOptions<OrleansLsnOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OrleansLsnOptions>, OrleansLsnOptionsValidator>());

        // The ...File keys are read once, when the options are built; one instance both reads and reports.
        services.AddSingleton<OrleansLsnSecretFiles>();
        services.AddSingleton<IPostConfigureOptions<OrleansLsnOptions>>(sp => sp.GetRequiredService<OrleansLsnSecretFiles>());
        services.AddSingleton<IValidateOptions<OrleansLsnOptions>>(sp => sp.GetRequiredService<OrleansLsnSecretFiles>());

        // The region goes into silo metadata, which Orleans reads when the silo is built; take it from the same source.
        var probe = new OrleansLsnOptions();
        configure(probe);
        builder.UseSiloMetadata(new Dictionary<string, string> { [RegionMetadata.Key] = probe.Region });

        builder.AddPlacementDirector<RegionPlacement, RegionPlacementDirector>();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<SiloEngines>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<SiloEngines>());
        services.AddSingleton<AlwaysOnSlots>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<AlwaysOnSlots>());

        // A caller's timeout or cancellation reaches the grain (and so the waiter), and fails the call at once.
        services.Configure<SiloMessagingOptions>(o => o.CancelRequestOnTimeout = true);

        // A caller's trace continues here (the W3C context travels with each grain call); free without a listener.
        if (!ActivityPropagation.IsAdded(services))
        {
            builder.AddActivityPropagation();
        }

        return builder;
    }

    private sealed class Marker;
}
