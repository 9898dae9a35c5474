using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Authentication;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime.Invocation;
using OrleansLsn.Runtime.Messaging;
using OrleansLsn.Runtime.Serialization;
using OrleansLsn.Runtime.Transport;

namespace OrleansLsn.Runtime;

/// <summary>
/// The client's connection to a gateway silo: sends calls, receives responses and observer calls, and reconnects
/// with backoff when the connection is lost. The client id never changes, so observer references stay valid across
/// reconnects. Calls made while disconnected wait for the reconnect, within their own timeout.
/// </summary>
internal sealed partial class ClientRuntime : CallRuntime, IFrameHandler
{
    private readonly ClientOptions _options;
    private readonly ILogger _logger;
    private readonly ConnectionOptions _connectionOptions;
    private readonly byte[] _secret;
    private readonly GatewayEndPoint[] _gateways;
    private readonly ConcurrentDictionary<Guid, ObserverEntry> _observers = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private TaskCompletionSource<Connection> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Connection? _connection;
    private Task _reconnectLoop = Task.CompletedTask;
    private int _nextGateway;
    private bool _disposed;

    public ClientRuntime(ClientOptions options, ILogger logger, TimeProvider timeProvider)
        : base(new InterfaceRegistry(new ContractSerializer()), options.ResponseTimeout, timeProvider, "client")
    {
        _options = options;
        _logger = logger;
        _secret = System.Text.Encoding.UTF8.GetBytes(options.ClusterSecret);
        _gateways = options.Gateways.Select(g => GatewayEndPoint.TryParse(g, out GatewayEndPoint e) ? e : throw new ArgumentException($"Invalid gateway '{g}'.", nameof(options))).ToArray();
        _connectionOptions = new ConnectionOptions { MaxFrameSize = options.MaxFrameSize };
    }

    public Guid ClientId { get; } = Guid.NewGuid();

    public bool IsConnected => _connection is { IsClosed: false };

    public string? SiloName { get; private set; }

    /// <summary>How many times the connection was re-established after a loss.</summary>
    public int Reconnects { get; private set; }

    /// <summary>Connects to the first gateway that accepts, retrying unreachable ones until the connect timeout.</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        timeout.CancelAfter(_options.ConnectTimeout);
        TimeSpan backoff = TimeSpan.FromMilliseconds(50);
        Exception? last = null;
        while (true)
        {
            try
            {
                await ConnectOnceAsync(timeout.Token).ConfigureAwait(false);
                return;
            }
            catch (ClusterConnectionRefusedException)
            {
                throw;
            }
            catch (Exception e) when (e is SocketException or IOException or SiloUnavailableException or AuthenticationException or ConnectionProtocolException
                || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                last = e;
                if (timeout.IsCancellationRequested)
                {
                    throw new SiloUnavailableException(
                        $"Could not connect to any gateway ({string.Join(", ", _gateways)}) within {_options.ConnectTimeout}: {last.Message}", last);
                }
            }

            try
            {
                await Task.Delay(backoff, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new SiloUnavailableException(
                    $"Could not connect to any gateway ({string.Join(", ", _gateways)}) within {_options.ConnectTimeout}: {last?.Message}", last);
            }

            backoff = Min(backoff * 2, _options.MaxReconnectBackoff);
        }
    }

    private async Task ConnectOnceAsync(CancellationToken cancellationToken)
    {
        GatewayEndPoint gateway = _gateways[(int)((uint)Interlocked.Increment(ref _nextGateway) % (uint)_gateways.Length)];
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(_options.HandshakeTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        Connection? connection = null;
        try
        {
            await socket.ConnectAsync(gateway.Host, gateway.Port, attempt.Token).ConfigureAwait(false);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (_options.UseTls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false, _options.TlsCertificateValidation);
                await ssl.AuthenticateAsClientAsync(
                    new SslClientAuthenticationOptions { TargetHost = _options.TlsTargetHost ?? gateway.Host },
                    attempt.Token).ConfigureAwait(false);
                stream = ssl;
            }

            connection = Connection.ForSocket(socket, stream, _connectionOptions, _logger, "client");
            SiloName = await Handshake.ConnectAsync(connection, _options.ClusterId, _secret, ClientId, Handshake.PeerRole.Client, attempt.Token).ConfigureAwait(false);
        }
        catch
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                socket.Dispose();
            }

            throw;
        }

        TaskCompletionSource<Connection> connected;
        lock (_lock)
        {
            if (_disposed)
            {
                connection.Close(null);
                throw new ObjectDisposedException(nameof(ClusterClient));
            }

            _connection = connection;
            connected = _connected;
        }

        connection.Start(this);
        LogConnected(_logger, gateway.ToString(), SiloName, ClientId);
        connected.TrySetResult(connection);
    }

    protected override ValueTask SendRequestAsync(ReferenceAddress target, FrameBuffer frame, PendingCall? call)
    {
        Connection? connection = _connection;
        if (connection is null || connection.IsClosed)
        {
            return SendWhenConnectedAsync(frame, call);
        }

        return SendOnAsync(connection, frame, call);
    }

    private async ValueTask SendWhenConnectedAsync(FrameBuffer frame, PendingCall? call)
    {
        Task<Connection> connected;
        lock (_lock)
        {
            connected = _connection is { IsClosed: false } current ? Task.FromResult(current) : _connected.Task;
        }

        TimeSpan wait = call?.Timeout ?? _options.ResponseTimeout;
        Connection connection;
        try
        {
            connection = await connected.WaitAsync(wait, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            frame.Dispose();
            throw new SiloUnavailableException($"Not connected to any gateway ({string.Join(", ", _gateways)}); gave up after {wait}.", e);
        }

        await SendOnAsync(connection, frame, call).ConfigureAwait(false);
    }

    private static async ValueTask SendOnAsync(Connection connection, FrameBuffer frame, PendingCall? call)
    {
        if (call is not null)
        {
            call.Channel = connection;
        }

        if (!await connection.SendAsync(frame).ConfigureAwait(false) || (call is not null && connection.IsClosed))
        {
            throw new SiloUnavailableException($"The connection to the silo at {connection.RemoteEndPoint} closed; the call may or may not have run.");
        }
    }

    protected override void SendCancel(PendingCall call)
    {
        if (call.Channel is Connection { IsClosed: false } connection)
        {
            _ = connection.SendAsync(ResponseFrames.Cancel(call.Id));
        }
    }

    void IFrameHandler.OnFrame(Connection connection, ReadOnlySpan<byte> frame)
    {
        switch ((MessageKind)frame[0])
        {
            case MessageKind.Response:
                OnResponse(frame);
                break;
            case MessageKind.Request:
                OnObserverRequest(connection, RequestMessage.Parse(frame));
                break;
            case MessageKind.Cancel:
                // Observer methods do not take cancellation tokens from the silo yet; nothing to cancel.
                break;
            default:
                throw new ConnectionProtocolException($"Unexpected frame kind {frame[0]} from the silo.");
        }
    }

    void IFrameHandler.OnClosed(Connection connection, Exception? error)
    {
        FailCallsOn(
            connection,
            static call => new SiloUnavailableException($"The connection to the silo was lost before {call.Method.DisplayName} answered; the call may or may not have run."),
            "unavailable");
        lock (_lock)
        {
            if (!ReferenceEquals(_connection, connection))
            {
                return;
            }

            _connection = null;
            if (_connected.Task.IsCompleted)
            {
                _connected = new TaskCompletionSource<Connection>(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            if (_disposed)
            {
                return;
            }

            LogDisconnected(_logger, connection.RemoteEndPoint, error?.Message ?? "closed");
            _reconnectLoop = Task.Run(ReconnectLoopAsync);
        }
    }

    private async Task ReconnectLoopAsync()
    {
        TimeSpan backoff = TimeSpan.FromMilliseconds(50);
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await ConnectOnceAsync(_stopping.Token).ConfigureAwait(false);
                Reconnects++;
                return;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
#pragma warning disable CA1031 // Every failure is retried with backoff; a refused handshake too, since a secret may be rotated.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogReconnectFailed(_logger, e.Message, backoff);
            }

            try
            {
                await Task.Delay(backoff, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = Min(backoff * 2, _options.MaxReconnectBackoff);
        }
    }

    private void OnObserverRequest(Connection connection, RequestMessage request)
    {
        RuntimeMetrics.RequestReceived("client");
        if (request.Target.Kind != ReferenceKind.Observer || !_observers.TryGetValue(request.Target.ObserverId, out ObserverEntry? entry))
        {
            request.ReleaseBody();
            if (!request.IsOneWay)
            {
                _ = connection.SendAsync(ResponseFrames.Error(request.Id, ResponseStatus.ClientNotAvailable, "The observer was deleted (DeleteObjectReference) or never existed in this client."));
            }

            return;
        }

        if (!entry.Interface.ById.TryGetValue(request.MethodId, out MethodDescriptor? method))
        {
            request.ReleaseBody();
            if (!request.IsOneWay)
            {
                _ = connection.SendAsync(ResponseFrames.Error(request.Id, ResponseStatus.UnknownMethod));
            }

            return;
        }

        connection.EnterInbound();
        ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.Runtime.RunObserverCallAsync(s.Connection, s.Request, s.Entry, s.Method), (Runtime: this, Connection: connection, Request: request, Entry: entry, Method: method), preferLocal: false);
    }

    private async Task RunObserverCallAsync(Connection connection, RequestMessage request, ObserverEntry entry, MethodDescriptor method)
    {
        try
        {
            object?[] args;
            try
            {
                args = RequestInvoker.ReadArguments(method, request, this, CancellationToken.None);
            }
            catch (GrainSerializationException e)
            {
                if (!request.IsOneWay)
                {
                    await connection.SendAsync(ResponseFrames.Exception(request.Id, e)).ConfigureAwait(false);
                }

                return;
            }
            finally
            {
                request.ReleaseBody();
            }

            Task task = RequestInvoker.Start(entry.Target, method, args);
            await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (request.IsOneWay)
            {
                if (task.IsFaulted)
                {
                    LogOneWayObserverFailed(_logger, method.DisplayName, task.Exception!.InnerException!);
                }

                return;
            }

            await connection.SendAsync(RequestInvoker.BuildResponse(request.Id, method, task, this)).ConfigureAwait(false);
        }
        finally
        {
            connection.ExitInbound();
        }
    }

    public TObserver CreateObjectReference<TObserver>(IGrainObserver obj)
        where TObserver : IGrainObserver
    {
        ArgumentNullException.ThrowIfNull(obj);
        if (obj is not TObserver)
        {
            throw new ArgumentException($"The object ({obj.GetType().Name}) does not implement {typeof(TObserver).Name}.", nameof(obj));
        }

        InterfaceDescriptor descriptor = Interfaces.Get(typeof(TObserver));
        foreach (KeyValuePair<Guid, ObserverEntry> existing in _observers)
        {
            if (ReferenceEquals(existing.Value.Target, obj) && existing.Value.Interface == descriptor)
            {
                return (TObserver)existing.Value.Reference;
            }
        }

        Guid observerId = Guid.NewGuid();
        object reference = ReferenceProxy.Create(descriptor, this, ReferenceAddress.ForObserver(descriptor.Id, ClientId, observerId));
        _observers[observerId] = new ObserverEntry(obj, descriptor, reference);
        return (TObserver)reference;
    }

    public void DeleteObjectReference<TObserver>(IGrainObserver obj)
        where TObserver : IGrainObserver
    {
        ArgumentNullException.ThrowIfNull(obj);
        foreach (KeyValuePair<Guid, ObserverEntry> existing in _observers)
        {
            if (ReferenceEquals(existing.Value.Target, obj) || ReferenceEquals(existing.Value.Reference, obj))
            {
                _observers.TryRemove(existing.Key, out _);
            }
        }
    }

    /// <summary>Closes the connection (for tests that simulate a network fault); the client reconnects.</summary>
    internal void DropConnection() => _connection?.Close(new IOException("Connection dropped on purpose."));

    public async ValueTask CloseAsync()
    {
        Connection? connection;
        Task reconnect;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            connection = _connection;
            reconnect = _reconnectLoop;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (connection is not null)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        await reconnect.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Dispose();
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private sealed record ObserverEntry(object Target, InterfaceDescriptor Interface, object Reference);

    [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "Client {ClientId} connected to silo {Silo} at {Gateway}")]
    private static partial void LogConnected(ILogger logger, string gateway, string? silo, Guid clientId);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "Lost the connection to the gateway at {Gateway} ({Reason}); reconnecting")]
    private static partial void LogDisconnected(ILogger logger, string gateway, string reason);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Reconnect failed: {Reason}; next attempt in {Backoff}")]
    private static partial void LogReconnectFailed(ILogger logger, string reason, TimeSpan backoff);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Warning, Message = "One-way observer call {Method} failed")]
    private static partial void LogOneWayObserverFailed(ILogger logger, string method, Exception exception);
}
