using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Orleans.Configuration;
using Orleans.Connections.Security;
using Orleans.Dashboard;
using OrleansLsn.Client;
using OrleansLsn.Hosting;
using OrleansLsn.Membership;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// The <c>silo</c> command: one Orleans silo of an OrleansLsn cluster, configured only through the <c>OrleansLsn</c>
/// section (appsettings.json, <c>OrleansLsn__*</c> environment variables, <c>--OrleansLsn:Key=value</c> arguments).
/// Every configuration problem is reported together and the process exits with 2 before Orleans starts.
/// </summary>
public static partial class SiloProgram
{
    /// <summary>Exit code for a configuration that does not validate.</summary>
    public const int ConfigurationError = 2;

    /// <summary>Environment variable with the PID of a parent process; the silo stops gracefully when it is gone.</summary>
    public const string ParentProcessVariable = "ORLEANSLSN_PARENT_PID";

    /// <summary>Runs a silo until SIGTERM / Ctrl-C (graceful: grains deactivate, the membership row goes to Dead).</summary>
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task parentWatch = ParentProcessWatch.StartAsync(stop);
        try
        {
            return await RunCoreAsync(args, stop.Token);
        }
        finally
        {
            await stop.CancelAsync();
            await parentWatch;
        }
    }

    private static async Task<int> RunCoreAsync(string[] args, CancellationToken cancellationToken)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);

        IConfigurationSection section = builder.Configuration.GetSection(OrleansLsnOptions.SectionName);
        var hostOptions = new SiloHostOptions();
        section.Bind(hostOptions);
        var lsnOptions = new OrleansLsnOptions();
        section.Bind(lsnOptions);

        var failures = new List<string>();
        ResolveSecretFiles(hostOptions, lsnOptions, failures);
        AddFailures(failures, new OrleansLsnOptionsValidator().Validate(null, lsnOptions));
        AddFailures(failures, new SiloHostOptionsValidator().Validate(null, hostOptions));
        ClusterCertificates? certificates = hostOptions.Tls.Mode == ClusterTlsMode.Required
            ? ClusterCertificates.TryLoad(hostOptions.Tls, "OrleansLsn:Tls:", failures)
            : null;
        IPAddress? advertised = SiloHostOptionsValidator.ResolveAdvertisedAddress(hostOptions.AdvertisedAddress);
        if (failures.Count == 0)
        {
            // Only valid ports are probed; checked before the silo joins the membership table.
            failures.AddRange(PortAvailability.FindTaken(hostOptions));
        }

        if (failures.Count > 0 || advertised is null)
        {
            Console.Error.WriteLine($"The silo's configuration has {failures.Count} problem(s); the silo did not start:");
            foreach (string failure in failures)
            {
                Console.Error.WriteLine("  - " + failure);
            }

            certificates?.Dispose();
            return ConfigurationError;
        }

        string membership = hostOptions.MembershipConnectionString ?? lsnOptions.PrimaryConnectionString;
        using ILoggerFactory startupLogging = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; }));
        ILogger logger = startupLogging.CreateLogger("OrleansLsn.Silo");
        if (certificates is null)
        {
            Log.TlsDisabled(logger);
        }

        if (!await ApplyMembershipSchemaAsync(membership, startupLogging, logger, cancellationToken))
        {
            certificates?.Dispose();
            return 1;
        }

        PeerCertificateCheck? peerCheck = certificates is null ? null : new PeerCertificateCheck(certificates);
        ConfigureOrleans(builder, hostOptions, lsnOptions, membership, advertised, peerCheck, certificates);
        ConfigureHttp(builder, hostOptions);
        ConfigureTracing(builder, hostOptions, lsnOptions, advertised);
        await using WebApplication app = builder.Build();
        if (peerCheck is not null)
        {
            peerCheck.Logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OrleansLsn.Tls");
        }

        // Each endpoint answers on its own listening port only. The port is the connection's local port, not the Host
        // header's: behind a published container port (8081 -> 8080) the header names the outside port.
        app.Use((context, next) =>
            context.GetEndpoint()?.Metadata.GetMetadata<LocalPortMetadata>() is { } only && only.Port != context.Connection.LocalPort
                ? Results.NotFound().ExecuteAsync(context)
                : next(context));
        app.MapHealthChecks("/healthz", new HealthCheckOptions
        {
            ResponseWriter = WriteHealthAsync,
            ResultStatusCodes =
            {
                [HealthStatus.Healthy] = StatusCodes.Status200OK,
                [HealthStatus.Degraded] = StatusCodes.Status200OK,
                [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
            },
        }).WithMetadata(new LocalPortMetadata(hostOptions.HttpPort));
        app.MapPrometheusScrapingEndpoint("/metrics").WithMetadata(new LocalPortMetadata(hostOptions.HttpPort));
        if (hostOptions.DashboardPort > 0)
        {
            app.MapOrleansDashboard().WithMetadata(new LocalPortMetadata(hostOptions.DashboardPort));
        }

        Log.Starting(logger, lsnOptions.Region, hostOptions.ClusterId, advertised, hostOptions.SiloPort, hostOptions.GatewayPort, hostOptions.HttpPort);
        try
        {
            await app.RunAsync(cancellationToken);
        }
        finally
        {
            certificates?.Dispose();
        }

        return 0;
    }

    private static void ConfigureOrleans(
        WebApplicationBuilder builder,
        SiloHostOptions host,
        OrleansLsnOptions lsn,
        string membership,
        IPAddress advertised,
        PeerCertificateCheck? peerCheck,
        ClusterCertificates? certificates)
    {
        IConfigurationSection membershipSection = builder.Configuration.GetSection(OrleansLsnOptions.SectionName + ":Membership");
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = host.ClusterId;
                o.ServiceId = host.ServiceId;
            });
            silo.Configure<SiloOptions>(o => o.SiloName = $"{lsn.Region}-{advertised}-{host.SiloPort}");
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = membership;
            });
            silo.ConfigureEndpoints(advertised, host.SiloPort, host.GatewayPort, listenOnAnyHostAddress: true);
            silo.Services.AddOptions<ClusterMembershipOptions>().Configure(FastFailureDetection.Apply).Bind(membershipSection);
            silo.AddOrleansLsn(builder.Configuration);
            if (certificates is not null && peerCheck is not null)
            {
                silo.UseTls(certificates.Certificate, tls =>
                {
                    tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
                    tls.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
                    tls.RemoteCertificateValidation = (certificate, _, _) => peerCheck.IsTrusted(certificate);
                });
            }

            if (host.DashboardPort > 0)
            {
                silo.AddDashboard();
            }
        });
    }

    private static void ConfigureHttp(WebApplicationBuilder builder, SiloHostOptions host)
    {
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ListenAnyIP(host.HttpPort);
            if (host.DashboardPort > 0)
            {
                kestrel.ListenAnyIP(host.DashboardPort);
            }
        });
        builder.Services.AddHealthChecks()
            .AddCheck<SiloHealthCheck>("silo")
            .AddCheck<TrackersHealthCheck>("trackers");
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter("Microsoft.Orleans", "OrleansLsn.Tracker", "OrleansLsn.Replication")
            .AddPrometheusExporter());
    }

    /// <summary>
    /// Traces over OTLP when an endpoint is configured (<c>OrleansLsn:Tracing:OtlpEndpoint</c> or the standard
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>); otherwise nothing listens and no span is created. The silo continues the
    /// traces its callers started (their sampling decides) and starts its own only at <c>Tracing:RootSampleRatio</c>:
    /// a tracker's polls, pushes to client views and membership traffic would otherwise each be a trace.
    /// </summary>
    private static void ConfigureTracing(WebApplicationBuilder builder, SiloHostOptions host, OrleansLsnOptions lsn, IPAddress advertised)
    {
        SiloTracingOptions tracing = host.Tracing;
        if (!tracing.IsEnabled(builder.Configuration))
        {
            return;
        }

        bool serviceNamed = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_SERVICE_NAME"]);
        builder.Services.AddOpenTelemetry().WithTracing(traces => traces
            .ConfigureResource(resource =>
            {
                if (!serviceNamed)
                {
                    resource.AddService("orleanslsn-silo", serviceInstanceId: $"{lsn.Region}-{advertised}-{host.SiloPort}");
                }

                resource.AddAttributes([new KeyValuePair<string, object>("orleanslsn.region", lsn.Region)]);
            })
            .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(tracing.RootSampleRatio)))
            .AddOrleansLsnInstrumentation()
            .AddNpgsql()
            .AddOtlpExporter(otlp =>
            {
                if (tracing.ExportEndpoint() is { } endpoint)
                {
                    otlp.Endpoint = endpoint;
                    otlp.Protocol = tracing.OtlpProtocol;
                }
            }));
    }

    private static async Task<bool> ApplyMembershipSchemaAsync(string membership, ILoggerFactory loggerFactory, ILogger logger, CancellationToken cancellationToken)
    {
        // The database may come up after the silo (containers): retry with backoff until it answers or we are stopped.
        TimeSpan delay = TimeSpan.FromSeconds(1);
        while (true)
        {
            try
            {
                await PostgresMembershipSchema.ApplyAsync(membership, loggerFactory.CreateLogger("OrleansLsn.Membership"), cancellationToken);
                return true;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            catch (MembershipSchemaException e)
            {
                // Retrying cannot help: the role lacks the right; the message says what to do.
                Log.MembershipSchemaRefused(logger, e.Message);
                return false;
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
            {
                Log.MembershipUnavailable(logger, delay.TotalSeconds, e.GetType().Name + ": " + e.Message);
                try
                {
                    await Task.Delay(delay, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }

                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    /// <summary>
    /// Reads the connection strings given as files (<c>…ConnectionStringFile</c>) before anything validates or uses them.
    /// The grains' options pipeline reads its own keys again when Orleans builds them, from the same files.
    /// </summary>
    private static void ResolveSecretFiles(SiloHostOptions host, OrleansLsnOptions lsn, List<string> failures)
    {
        OrleansLsnSecretFiles.Resolve(lsn, failures);
        host.MembershipConnectionString = SecretFile.Resolve(
            OrleansLsnOptions.SectionName + ":" + nameof(host.MembershipConnectionString), host.MembershipConnectionString, host.MembershipConnectionStringFile, failures);
    }

    private static void AddFailures(List<string> failures, ValidateOptionsResult result)
    {
        if (result.Failed)
        {
            failures.AddRange(result.Failures);
        }
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(
                e => e.Key,
                e => new { status = e.Value.Status.ToString(), description = e.Value.Description, data = e.Value.Data }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body, JsonOptions), context.RequestAborted);
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>The one local port an endpoint answers on.</summary>
    private sealed record LocalPortMetadata(int Port);

    private static partial class Log
    {
        [LoggerMessage(4200, LogLevel.Information, "Starting silo: region {Region}, cluster {ClusterId}, advertised {Address}, silo port {SiloPort}, gateway port {GatewayPort}, health and metrics on port {HttpPort}")]
        internal static partial void Starting(ILogger logger, string region, string clusterId, IPAddress address, int siloPort, int gatewayPort, int httpPort);

        [LoggerMessage(4201, LogLevel.Warning, "TLS is disabled (OrleansLsn:Tls:Mode=Disabled): anyone who reaches the silo and gateway ports can call any grain")]
        internal static partial void TlsDisabled(ILogger logger);

        [LoggerMessage(4202, LogLevel.Warning, "The membership database is not reachable; retrying in {DelaySeconds} s: {Error}")]
        internal static partial void MembershipUnavailable(ILogger logger, double delaySeconds, string error);

        [LoggerMessage(4203, LogLevel.Critical, "The silo cannot start: {Error}")]
        internal static partial void MembershipSchemaRefused(ILogger logger, string error);
    }
}
