using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace OrleansLsn.Client;

/// <summary>
/// The read decision of one scope (a web request, a job): set once by whoever decides (OrleansLsn.AspNetCore's
/// middleware, or background code with <see cref="ReadRouter.DecideAsync"/>), read by everything that reads. Registered
/// once per scope by <see cref="ReadRoutingServiceCollectionExtensions.AddReadRouting"/>; <see cref="ReadDecision"/> is
/// injectable too and resolves to <see cref="Decision"/>.
/// </summary>
public sealed class ReadScope
{
    private ReadDecision? _decision;

    /// <summary>The scope's decision.</summary>
    /// <exception cref="InvalidOperationException">Nothing decided this scope's reads (for a web request: the endpoint has no read decision, or <c>UseReadYourWrites</c> did not run before it).</exception>
    public ReadDecision Decision
    {
        get => _decision ?? throw new InvalidOperationException(
            "No read decision was made for this scope: in a web application call app.UseReadYourWrites() after app.UseRouting() and do not mark the endpoint WithoutReadDecision; elsewhere set ReadScope.Decision from ReadRouter.DecideAsync.");
        set => _decision = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The scope's decision, or <c>null</c> when none was made.</summary>
    public ReadDecision? DecisionOrNull => _decision;
}

/// <summary>Registers read routing: <see cref="ReadRouter"/>, <see cref="ReadScope"/>, <see cref="ReadDecision"/>, <see cref="LsnWriteRecorder"/>.</summary>
public static class ReadRoutingServiceCollectionExtensions
{
    /// <summary>
    /// Registers read routing configured from <paramref name="configuration"/>'s <c>OrleansLsn:Reads</c> section (see
    /// <see cref="ReadRoutingOptions"/>; checked at start, a missing key named) and then <paramref name="configure"/>.
    /// Needs the Orleans client (<see cref="IClusterClient"/>) in the same container.
    /// </summary>
    public static IServiceCollection AddReadRouting(this IServiceCollection services, IConfiguration configuration, Action<ReadRoutingOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        OptionsBuilder<ReadRoutingOptions> options = services.AddOptions<ReadRoutingOptions>().Bind(configuration.GetSection(ReadRoutingOptions.Section)).ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReadRoutingOptions>, ReadRoutingOptionsValidator>());
        services.TryAddSingleton<ReadRoutingSecretFiles>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<ReadRoutingOptions>, ReadRoutingSecretFiles>(sp => sp.GetRequiredService<ReadRoutingSecretFiles>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReadRoutingOptions>, ReadRoutingSecretFiles>(sp => sp.GetRequiredService<ReadRoutingSecretFiles>()));
        services.TryAddSingleton(sp => new ReadRouter(
            sp.GetRequiredService<IClusterClient>(),
            sp.GetRequiredService<IOptions<ReadRoutingOptions>>(),
            sp.GetService<ReplayViews>(),
            sp.GetService<ILogger<ReadRouter>>(),
            sp.GetService<TimeProvider>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ReadRouterWarmup>());
        services.TryAddScoped<ReadScope>();
        services.TryAddScoped(sp => sp.GetRequiredService<ReadScope>().Decision);
        services.AddLsnWriteRecorder();
        return services;
    }
}

/// <summary>Starts the region's replay view when the host starts (after the Orleans client, registered before it).</summary>
internal sealed class ReadRouterWarmup(ReadRouter router) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        router.Warm();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
