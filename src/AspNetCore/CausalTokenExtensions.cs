using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

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

    /// <summary>Reads each request's causal token and sets the merged one on responses whose request wrote.</summary>
    public static IApplicationBuilder UseCausalTokens(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.UseMiddleware<CausalTokenMiddleware>();
    }
}
