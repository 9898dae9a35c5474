using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OrleansLsn.Client;

namespace OrleansLsn.AspNetCore;

/// <summary>Causal tokens in an ASP.NET Core application: <c>AddCausalTokens()</c> and <c>UseCausalTokens()</c>.</summary>
public static class CausalTokenExtensions
{
    /// <summary>
    /// Registers the causal token's services: ASP.NET Core Data Protection (configure its key ring as for any
    /// multi-instance application, so every instance reads every other's tokens), the options (validated at start) and
    /// <see cref="CausalTokenProtector"/>.
    /// </summary>
    public static IServiceCollection AddCausalTokens(this IServiceCollection services, Action<CausalTokenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddDataProtection();
        OptionsBuilder<CausalTokenOptions> options = services.AddOptions<CausalTokenOptions>().ValidateOnStart();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CausalTokenOptions>, CausalTokenOptionsValidator>());
        services.TryAddSingleton<CausalTokenProtector>();
        return services;
    }

    /// <summary>
    /// Registers read-your-writes for the application: the causal token (<see cref="AddCausalTokens"/>), read routing from
    /// <paramref name="configuration"/>'s <c>OrleansLsn:Reads</c> section (<see cref="ReadRouter"/>, the request's
    /// <see cref="ReadDecision"/>, <see cref="LsnWriteRecorder"/>; a missing region or replica is a start-up error naming
    /// the key) and what responses say about it (<see cref="ReadDecisionOptions"/>). Needs the Orleans client in the
    /// same container.
    /// </summary>
    public static IServiceCollection AddReadYourWrites(this IServiceCollection services, IConfiguration configuration, Action<ReadRoutingOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddCausalTokens();
        services.AddReadRouting(configuration, configure);
        services.AddOptions<ReadDecisionOptions>().Bind(configuration.GetSection(ReadRoutingOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReadDecisionOptions>, ReadDecisionOptionsValidator>());
        return services;
    }

    /// <summary>
    /// Reads each request's causal token and decides where its reads go (the endpoint's <see cref="ReadYourWritesAttribute"/>
    /// or <c>WithReadYourWrites</c>, else the configured bound). Call after <c>UseRouting</c> (and authentication), before
    /// the endpoints.
    /// </summary>
    public static IApplicationBuilder UseReadYourWrites(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.UseMiddleware<CausalTokenMiddleware>().UseMiddleware<ReadDecisionMiddleware>();
    }

    /// <summary>Reads each request's causal token and sets the merged one on responses whose request wrote.</summary>
    public static IApplicationBuilder UseCausalTokens(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.UseMiddleware<CausalTokenMiddleware>();
    }
}
