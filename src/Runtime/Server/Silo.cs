using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrleansLsn.Runtime.Invocation;
using OrleansLsn.Runtime.Serialization;
using OrleansLsn.Runtime.Transport;

namespace OrleansLsn.Runtime;

/// <summary>
/// A silo: hosts grain activations and accepts client connections on its gateway port. Normally started by the host
/// (<see cref="SiloHostingExtensions.UseOrleansLsn(Microsoft.Extensions.Hosting.IHostBuilder, Action{ISiloBuilder})"/>).
/// A connection must complete the cluster-secret handshake within <see cref="SiloOptions.HandshakeTimeout"/> before any
/// of its bytes reach grain code; a connection that breaks the frame protocol is closed and logged, and nothing else
/// is affected.
/// </summary>
public sealed partial class Silo : IAsyncDisposable
{
    private readonly SiloOptions _options;
    private readonly GrainCollectionOptions _collection;
    private readonly IEnumerable<GrainClassRegistration> _registrations;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly CancellationTokenSource _stopping = new();
    private readonly byte[] _secret;
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private SiloRuntime? _runtime;
    private int _handshakesInProgress;

    /// <summary>Creates a silo; the host starts it.</summary>
    internal Silo(
        IOptions<SiloOptions> options,
        IOptions<GrainCollectionOptions> collection,
        IEnumerable<GrainClassRegistration> registrations,
        IServiceProvider services,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(collection);
        _options = options.Value;
        _collection = collection.Value;
        _registrations = registrations;
        _services = services;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("OrleansLsn.Runtime.Silo");
        _timeProvider = timeProvider ?? TimeProvider.System;
        _secret = System.Text.Encoding.UTF8.GetBytes(_options.ClusterSecret ?? string.Empty);
        Name = _options.SiloName ?? $"{Environment.MachineName}-{Environment.ProcessId}";
    }

    /// <summary>The silo's name.</summary>
    public string Name { get; }

    /// <summary>The gateway endpoint actually bound (the real port when <see cref="SiloOptions.GatewayPort"/> is 0).</summary>
    public IPEndPoint EndPoint { get; private set; } = new(IPAddress.None, 0);

    /// <summary>This silo's address.</summary>
    public SiloAddress? Address { get; private set; }

    /// <summary>The number of activations alive now.</summary>
    public int ActivationCount => _runtime?.Catalog.Count ?? 0;

    /// <summary>The number of authenticated client connections.</summary>
    public int ConnectedClients => _runtime?.ConnectedClients ?? 0;

    /// <summary>Grain references for code running beside the silo (for example a host's background service).</summary>
    public IGrainFactory GrainFactory => Runtime.GrainFactory;

    internal SiloRuntime Runtime => _runtime ?? throw new InvalidOperationException("The silo has not started.");

    /// <summary>Builds the grain registry (refusing interfaces with types outside the contract) and starts listening.</summary>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        ValidateOptionsResult validation = new SiloOptionsValidator().Validate(null, _options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(nameof(SiloOptions), typeof(SiloOptions), validation.Failures);
        }

        var interfaces = new InterfaceRegistry(new ContractSerializer());
        var grainTypes = new GrainTypeRegistry(_registrations, interfaces);
        var listener = new Socket(_options.ListenAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(_options.ListenAddress, _options.GatewayPort));
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        Address = new SiloAddress(EndPoint, _timeProvider.GetUtcNow().ToUnixTimeMilliseconds());
        SiloAddress address = Address;
        _runtime = new SiloRuntime(
            _options,
            _collection,
            interfaces,
            grainTypes,
            new LocalPlacementDirector(() => address),
            _services,
            _loggerFactory.CreateLogger("OrleansLsn.Runtime.Grains"),
            _timeProvider);
        _acceptLoop = Task.Run(AcceptLoopAsync, CancellationToken.None);
        LogStarted(_logger, Name, EndPoint.ToString(), _options.ClusterId, grainTypes.Classes.Count, _options.TlsCertificate is not null);
        return Task.CompletedTask;
    }

    /// <summary>Stops accepting, deactivates every grain (within the token), then closes client connections.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_runtime is not null)
        {
            await _runtime.Catalog.DeactivateAllAsync(cancellationToken).ConfigureAwait(false);
            _runtime.CloseClients();
            _runtime.Dispose();
        }

        LogStopped(_logger, Name);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await StopAsync(timeout.Token).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                LogAcceptFailed(_logger, e.Message);
                continue;
            }

            _ = Task.Run(() => AcceptAsync(socket));
        }
    }

    private async Task AcceptAsync(Socket socket)
    {
        Interlocked.Increment(ref _handshakesInProgress);
        string remote = socket.RemoteEndPoint?.ToString() ?? "?";
        Connection? connection = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(_options.HandshakeTimeout);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (_options.TlsCertificate is { } certificate)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, timeout.Token).ConfigureAwait(false);
                stream = ssl;
            }

            connection = Connection.ForSocket(
                socket,
                stream,
                new ConnectionOptions { MaxFrameSize = _options.MaxFrameSize, MaxInboundInFlight = _options.MaxPendingRequestsPerConnection },
                _logger,
                "silo");
            Handshake.HelloResult hello = await Handshake.AcceptAsync(connection, _options.ClusterId, _secret, Name, timeout.Token).ConfigureAwait(false);
            if (hello.Role != Handshake.PeerRole.Client)
            {
                throw new ClusterConnectionRefusedException("silo-to-silo connections arrive with the cluster issue");
            }

            LogClientConnected(_logger, hello.PeerId, remote);
            Runtime.AttachClient(connection, hello.PeerId);
        }
        catch (ClusterConnectionRefusedException e)
        {
            RuntimeMetrics.ConnectionRefused(e.Message.Contains("secret", StringComparison.Ordinal) ? "secret" : "handshake");
            LogRefused(_logger, remote, e.Message);
            Close(connection, socket);
        }
#pragma warning disable CA1031 // Whatever a peer does during the handshake closes that connection only.
        catch (Exception e)
#pragma warning restore CA1031
        {
            string reason = e is OperationCanceledException ? $"no valid handshake within {_options.HandshakeTimeout}" : e.Message;
            RuntimeMetrics.ConnectionRefused("protocol");
            LogHandshakeFailed(_logger, remote, reason);
            Close(connection, socket);
        }
        finally
        {
            Interlocked.Decrement(ref _handshakesInProgress);
        }
    }

    private static void Close(Connection? connection, Socket socket)
    {
        if (connection is not null)
        {
            connection.Close(null);
        }
        else
        {
            socket.Dispose();
        }
    }

    [LoggerMessage(EventId = 3300, Level = LogLevel.Information, Message = "Silo {Silo} listening on {EndPoint} for cluster {ClusterId} with {GrainClasses} grain classes (TLS: {Tls})")]
    private static partial void LogStarted(ILogger logger, string silo, string endPoint, string clusterId, int grainClasses, bool tls);

    [LoggerMessage(EventId = 3301, Level = LogLevel.Information, Message = "Silo {Silo} stopped")]
    private static partial void LogStopped(ILogger logger, string silo);

    [LoggerMessage(EventId = 3302, Level = LogLevel.Information, Message = "Client {ClientId} connected from {Remote}")]
    private static partial void LogClientConnected(ILogger logger, Guid clientId, string remote);

    [LoggerMessage(EventId = 3303, Level = LogLevel.Warning, Message = "Refused the connection from {Remote}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 3304, Level = LogLevel.Warning, Message = "Closed the connection from {Remote} during the handshake: {Reason}")]
    private static partial void LogHandshakeFailed(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 3305, Level = LogLevel.Warning, Message = "Accepting a connection failed: {Reason}")]
    private static partial void LogAcceptFailed(ILogger logger, string reason);
}
