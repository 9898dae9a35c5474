using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace OrleansLsn.Client;

/// <summary>
/// A started Orleans client of an OrleansLsn cluster in one call, for scripts and tools: it owns a host configured by
/// <see cref="OrleansLsnClientBuilderExtensions.UseOrleansLsnClient(IClientBuilder, Action{OrleansLsnClientOptions})"/>,
/// and disposing it stops the client and disposes the host. Applications with a host of their own use
/// <see cref="OrleansLsnClientBuilderExtensions"/> instead.
/// </summary>
/// <example>
/// <code>
/// await using OrleansLsnClient client = await OrleansLsnClient.ConnectAsync(membershipConnectionString);
/// LsnTrackerStatus status = await client.Cluster.GetGrain&lt;ILsnTrackerGrain&gt;("eu-west").GetStatus();
/// </code>
/// </example>
public sealed class OrleansLsnClient : IAsyncDisposable
{
    private readonly IHost _host;
    private int _disposed;

    private OrleansLsnClient(IHost host)
    {
        _host = host;
        Cluster = host.Services.GetRequiredService<IClusterClient>();
    }

    /// <summary>The connected cluster client: grains, observer references, and the subscription helpers of <see cref="ClusterClientSubscriptionExtensions"/>.</summary>
    public IClusterClient Cluster { get; }

    /// <summary>The host's services (options, logging, <see cref="TimeProvider"/>).</summary>
    public IServiceProvider Services => _host.Services;

    /// <summary>
    /// Builds a host with an Orleans client whose membership (and so gateway list) is in the PostgreSQL database of
    /// <paramref name="membershipConnectionString"/>, starts it and returns once the client is connected to a gateway.
    /// <paramref name="tls"/> is required on purpose: give the client's certificate and the cluster's CA, or say
    /// <see cref="ClusterTlsMode.Disabled"/> explicitly.
    /// No configuration files or environment variables are read, and nothing is logged.
    /// </summary>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">An argument is not valid (named by its key).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <remarks>Any other failure to connect (no gateway in the table, database unreachable) is Orleans' own exception.</remarks>
    public static Task<OrleansLsnClient> ConnectAsync(
        string membershipConnectionString,
        ClusterTlsOptions tls,
        string clusterId = OrleansLsnClientOptions.DefaultId,
        string serviceId = OrleansLsnClientOptions.DefaultId,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(membershipConnectionString);
        ArgumentNullException.ThrowIfNull(tls);
        return ConnectAsync(
            o =>
            {
                o.MembershipConnectionString = membershipConnectionString;
                o.ClusterId = clusterId;
                o.ServiceId = serviceId;
                o.Tls = tls;
            },
            null,
            cancellationToken);
    }

    /// <summary>
    /// Builds, starts and connects a client with options set in code; <paramref name="configureHost"/> may add logging or
    /// services, or configure the Orleans client further. See <see cref="ConnectAsync(string, ClusterTlsOptions, string, string, CancellationToken)"/>.
    /// </summary>
    public static async Task<OrleansLsnClient> ConnectAsync(
        Action<OrleansLsnClientOptions> configure,
        Action<HostApplicationBuilder>? configureHost = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configure);
        IHost host = Build(configure, configureHost);
        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new OrleansLsnClient(host);
    }

    /// <summary>Subscribes to a region's replay position; see <see cref="ClusterClientSubscriptionExtensions.SubscribeToReplayAsync"/>.</summary>
    public Task<LsnSubscription> SubscribeToReplayAsync(string region, ILsnObserver observer, SubscriptionOptions? options = null, CancellationToken cancellationToken = default) =>
        Cluster.SubscribeToReplayAsync(region, observer, options, cancellationToken);

    /// <summary>Subscribes to a replication slot's changes; see <see cref="ClusterClientSubscriptionExtensions.SubscribeToChangesAsync(IClusterClient, string, IChangeObserver, SubscriptionOptions?, CancellationToken)"/>.</summary>
    public Task<ChangeSubscription> SubscribeToChangesAsync(string slot, IChangeObserver observer, SubscriptionOptions? options = null, CancellationToken cancellationToken = default) =>
        Cluster.SubscribeToChangesAsync(slot, observer, options, cancellationToken);

    /// <summary>Subscribes to a replication slot's changes after a consistent copy of tables; see <see cref="ClusterClientSubscriptionExtensions.SubscribeToChangesAsync(IClusterClient, string, IChangeObserver, SnapshotRequest, SubscriptionOptions?, CancellationToken)"/>.</summary>
    public Task<ChangeSubscription> SubscribeToChangesAsync(string slot, IChangeObserver observer, SnapshotRequest snapshot, SubscriptionOptions? options = null, CancellationToken cancellationToken = default) =>
        Cluster.SubscribeToChangesAsync(slot, observer, snapshot, options, cancellationToken);

    /// <summary>Creates a read-your-writes session over this client, logging to the host's logging; see <see cref="ReadYourWritesSession"/>.</summary>
    public ReadYourWritesSession CreateSession(NpgsqlDataSource primary, IReadOnlyDictionary<string, NpgsqlDataSource> replicas, ReadYourWritesOptions? options = null) =>
        new(Cluster, primary, replicas, options, Services.GetService<ILogger<ReadYourWritesSession>>(), Services.GetService<TimeProvider>(), Services.GetService<ReplayViews>());

    /// <summary>Stops the client (best effort, at most 30 s) and disposes the host. Calling it again does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _host.StopAsync(stopTimeout.Token).ConfigureAwait(false);
        }
        finally
        {
            _host.Dispose();
        }
    }

    /// <summary>The host <see cref="ConnectAsync(Action{OrleansLsnClientOptions}, Action{HostApplicationBuilder}?, CancellationToken)"/> starts (tests inspect it).</summary>
    internal static IHost Build(Action<OrleansLsnClientOptions> configure, Action<HostApplicationBuilder>? configureHost)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.UseOrleansClient(client => client.UseOrleansLsnClient(configure));
        configureHost?.Invoke(builder);
        return builder.Build();
    }
}
