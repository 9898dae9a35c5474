using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace OrleansLsn.Runtime;

/// <summary>
/// A connection to the cluster through a gateway silo (Orleans: the client behind <c>IClusterClient</c>). Get one
/// from the host (<see cref="ClientHostingExtensions.UseOrleansLsnClient(Microsoft.Extensions.Hosting.IHostBuilder, Action{IClientBuilder})"/>)
/// or with one awaited call: <see cref="ConnectAsync(ClientOptions, ILoggerFactory?, CancellationToken)"/>.
/// </summary>
public sealed class ClusterClient : IClusterClient, IAsyncDisposable
{
    private readonly ClientRuntime _runtime;

    /// <summary>Creates a client; call <see cref="ConnectAsync(CancellationToken)"/> before use (the host does it).</summary>
    public ClusterClient(IOptions<ClientOptions> options, IServiceProvider serviceProvider, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ValidateOptionsResult validation = new ClientOptionsValidator().Validate(null, options.Value);
        if (validation.Failed)
        {
            throw new OptionsValidationException(nameof(ClientOptions), typeof(ClientOptions), validation.Failures);
        }

        ServiceProvider = serviceProvider;
        _runtime = new ClientRuntime(
            options.Value,
            (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("OrleansLsn.Runtime.Client"),
            timeProvider ?? TimeProvider.System);
    }

    /// <inheritdoc />
    public IServiceProvider ServiceProvider { get; }

    /// <summary>This client's id; it stays the same across reconnects.</summary>
    public Guid ClientId => _runtime.ClientId;

    /// <summary>Whether a gateway connection is open right now.</summary>
    public bool IsConnected => _runtime.IsConnected;

    /// <summary>How many times the client reconnected after losing its gateway.</summary>
    public int Reconnects => _runtime.Reconnects;

    internal ClientRuntime Runtime => _runtime;

    /// <summary>
    /// Connects, validates the options, and returns a ready client: the one-call way for scripts and tests.
    /// </summary>
    /// <exception cref="OptionsValidationException">The options are invalid.</exception>
    /// <exception cref="ClusterConnectionRefusedException">A silo refused the handshake (wrong secret or cluster id).</exception>
    /// <exception cref="SiloUnavailableException">No gateway answered within <see cref="ClientOptions.ConnectTimeout"/>.</exception>
    public static async Task<ClusterClient> ConnectAsync(ClientOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        var client = new ClusterClient(Options.Create(options), EmptyServiceProvider.Instance, loggerFactory);
        try
        {
            await client.ConnectAsync(cancellationToken).ConfigureAwait(false);
            return client;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>One-call connect to a single gateway.</summary>
    public static Task<ClusterClient> ConnectAsync(string gateway, string clusterId, string clusterSecret, CancellationToken cancellationToken = default)
    {
        var options = new ClientOptions { ClusterId = clusterId, ClusterSecret = clusterSecret };
        options.Gateways.Add(gateway);
        return ConnectAsync(options, null, cancellationToken);
    }

    /// <summary>Connects to the first gateway that accepts.</summary>
    public Task ConnectAsync(CancellationToken cancellationToken = default) => _runtime.ConnectAsync(cancellationToken);

    /// <inheritdoc />
    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey)
        where TGrainInterface : IGrainWithStringKey => _runtime.GetGrain<TGrainInterface>(primaryKey);

    /// <inheritdoc />
    public TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver => _runtime.CreateObjectReference<TGrainObserverInterface>(obj);

    /// <inheritdoc />
    public void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver => _runtime.DeleteObjectReference<TGrainObserverInterface>(obj);

    /// <summary>Closes the connection; pending calls fail.</summary>
    public ValueTask DisposeAsync() => _runtime.CloseAsync();

    private sealed class EmptyServiceProvider : IServiceProvider
    {
        public static readonly EmptyServiceProvider Instance = new();

        public object? GetService(Type serviceType) => null;
    }
}
