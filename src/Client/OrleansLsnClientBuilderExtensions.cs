using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Connections.Security;

namespace OrleansLsn.Client;

/// <summary>
/// Configures an ordinary Orleans client for an OrleansLsn cluster from the same <c>OrleansLsn</c> configuration section
/// silos use: cluster and service id, PostgreSQL membership (ADO.NET clustering, invariant <c>Npgsql</c>), gateway
/// list refresh, response timeout, and cancellation of timed-out calls on the silo.
/// </summary>
public static class OrleansLsnClientBuilderExtensions
{
    /// <summary>The ADO.NET invariant of Npgsql, as Orleans' ADO.NET providers name it.</summary>
    public const string NpgsqlInvariant = "Npgsql";

    /// <summary>The category of Orleans' option dump at start (filtered out unless <c>Client:LogOptions</c>).</summary>
    internal const string OptionsLoggerCategory = "Orleans.ClientOptionsLogger";

    /// <summary>
    /// Configures the client from the <c>OrleansLsn</c> section of the client builder's own configuration; see
    /// <see cref="UseOrleansLsnClient(IClientBuilder, IConfiguration)"/>.
    /// </summary>
    public static IClientBuilder UseOrleansLsnClient(this IClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseOrleansLsnClient(builder.Configuration);
    }

    /// <summary>
    /// Configures the client from the <c>OrleansLsn</c> section of <paramref name="configuration"/> (appsettings.json,
    /// <c>OrleansLsn__*</c> environment variables, command line): <c>ClusterId</c> and <c>ServiceId</c> (default
    /// <c>orleanslsn</c>), membership in PostgreSQL at <c>MembershipConnectionString</c> (else
    /// <c>PrimaryConnectionString</c>; either may instead come from a file, <c>MembershipConnectionStringFile</c> or
    /// <c>PrimaryConnectionStringFile</c>, read once when the options are built), <c>Client:GatewayListRefreshPeriod</c> (5 s), <c>Client:ResponseTimeout</c>
    /// (30 s), <c>CancelRequestOnTimeout</c>, and Orleans' activity propagation (<c>AddActivityPropagation</c>: the trace of a
    /// call continues on the silo; see <see cref="OrleansLsnActivitySources"/>). The options are validated when the host starts: with any problem it
    /// does not start, and the <see cref="OptionsValidationException"/> names every problem by its key, never a
    /// connection string's value. Calling it again (with any overload) changes nothing.
    /// </summary>
    public static IClientBuilder UseOrleansLsnClient(this IClientBuilder builder, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        IConfigurationSection section = configuration.GetSection(OrleansLsnClientOptions.SectionName);
        return builder.UseOrleansLsnClientCore(options => section.Bind(options));
    }

    /// <summary>Configures the client with options set in code; see <see cref="UseOrleansLsnClient(IClientBuilder, IConfiguration)"/>.</summary>
    public static IClientBuilder UseOrleansLsnClient(this IClientBuilder builder, Action<OrleansLsnClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return builder.UseOrleansLsnClientCore(configure);
    }

    /// <summary>
    /// Adds an Orleans client to the host, configured from the <c>OrleansLsn</c> section of the host's configuration
    /// (see <see cref="UseOrleansLsnClient(IClientBuilder, IConfiguration)"/>); <paramref name="configureClient"/> may
    /// configure it further. Calling it again changes nothing but runs <paramref name="configureClient"/>.
    /// </summary>
    public static TBuilder UseOrleansLsnClient<TBuilder>(this TBuilder builder, Action<IClientBuilder>? configureClient = null)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        IConfiguration configuration = builder.Configuration;
        builder.UseOrleansClient(client =>
        {
            client.UseOrleansLsnClient(configuration);
            configureClient?.Invoke(client);
        });
        return builder;
    }

    private static IClientBuilder UseOrleansLsnClientCore(this IClientBuilder builder, Action<OrleansLsnClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IServiceCollection services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(Marker)))
        {
            return builder;
        }

        services.AddSingleton<Marker>();
        services.AddOptions<OrleansLsnClientOptions>().Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OrleansLsnClientOptions>, OrleansLsnClientOptionsValidator>());

        // The ...File keys are read once, when the options are built; one instance both reads and reports.
        services.AddSingleton<OrleansLsnClientSecretFiles>();
        services.AddSingleton<IPostConfigureOptions<OrleansLsnClientOptions>>(sp => sp.GetRequiredService<OrleansLsnClientSecretFiles>());
        services.AddSingleton<IValidateOptions<OrleansLsnClientOptions>>(sp => sp.GetRequiredService<OrleansLsnClientSecretFiles>());

        // Orleans' ADO.NET providers do not consult DbProviderFactories: they load the assembly named "Npgsql" and read
        // NpgsqlFactory.Instance themselves, so no RegisterFactory is needed (this assembly references Npgsql, so it is
        // deployed with the client).
        builder.UseAdoNetClustering((OptionsBuilder<AdoNetClusteringClientOptions> clustering) => clustering
            .Configure<IOptions<OrleansLsnClientOptions>>((o, lsn) =>
            {
                o.Invariant = NpgsqlInvariant;
                o.ConnectionString = lsn.Value.EffectiveMembershipConnectionString;
            }));
        services.AddOptions<ClusterOptions>().Configure<IOptions<OrleansLsnClientOptions>>((o, lsn) =>
        {
            o.ClusterId = lsn.Value.ClusterId;
            o.ServiceId = lsn.Value.ServiceId;
        });
        services.AddOptions<GatewayOptions>().Configure<IOptions<OrleansLsnClientOptions>>(
            (o, lsn) => o.GatewayListRefreshPeriod = lsn.Value.Client.GatewayListRefreshPeriod);
        services.AddOptions<ClientMessagingOptions>().Configure<IOptions<OrleansLsnClientOptions>>((o, lsn) =>
        {
            o.ResponseTimeout = lsn.Value.Client.ResponseTimeout;

            // A caller's timeout cancels the call on the silo too (a tracker wait leaves its index at once).
            o.CancelRequestOnTimeout = true;
        });
        // Orleans carries the W3C trace context through grain calls (a read's span is the parent of the call to the
        // tracker, and of the silo's span for it). It costs nothing without a listener; not twice if already added.
        if (!ActivityPropagation.IsAdded(services))
        {
            builder.AddActivityPropagation();
        }

        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<ReplayViewOptions>();
        services.TryAddSingleton(sp => new ReplayViews(
            sp.GetRequiredService<IClusterClient>(), sp.GetRequiredService<IOptions<ReplayViewOptions>>().Value, sp.GetService<ILoggerFactory>()));

        // Connecting is bounded (Client:ConnectTimeout) and a failure names the cluster id, the membership database and
        // the certificate refused, instead of Orleans' own retries for minutes. A filter the application registers later wins.
        var refused = new RefusedCertificates();
        services.AddSingleton(refused);
        services.AddSingleton<IClientConnectionRetryFilter, ClusterConnectRetryFilter>();

        // Orleans logs every option at start (about 100 lines at information level): only on request (Client:LogOptions).
        // Read now from the same source as the options (as the TLS settings are), so that logging never waits on them.
        var probe = new OrleansLsnClientOptions();
        configure(probe);
        if (probe.Client?.LogOptions != true)
        {
            services.Configure<LoggerFilterOptions>(filter => filter.Rules.Add(new LoggerFilterRule(null, OptionsLoggerCategory, LogLevel.Warning, null)));
        }

        AddTls(builder, probe, refused);
        return builder;
    }

    /// <summary>
    /// Orleans takes the client certificate when the client is built, so the TLS settings are read now from the same
    /// source as the options; problems are reported by the validator when the host starts, with the other problems.
    /// </summary>
    private static void AddTls(IClientBuilder builder, OrleansLsnClientOptions probe, RefusedCertificates refused)
    {
        if (probe.Tls.Mode != ClusterTlsMode.Required)
        {
            return;
        }

        var failures = new List<string>();
        ClusterCertificates? certificates = ClusterCertificates.TryLoad(probe.Tls, OrleansLsnClientOptions.SectionName + ":Tls:", failures);
        if (certificates is null)
        {
            builder.Services.AddSingleton<IValidateOptions<OrleansLsnClientOptions>>(new TlsLoadFailures(failures));
            return;
        }

        builder.Services.AddSingleton(certificates);
        builder.UseTls(certificates.Certificate, tls =>
        {
            tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
            tls.RemoteCertificateValidation = (certificate, _, _) =>
            {
                if (certificates.Refusal(certificate) is { } reason)
                {
                    refused.Refused(certificate, reason);
                    return false;
                }

                return true;
            };
        });
    }

    private sealed class Marker;
}
