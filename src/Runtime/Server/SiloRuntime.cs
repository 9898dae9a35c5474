using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime.Invocation;
using OrleansLsn.Runtime.Messaging;
using OrleansLsn.Runtime.Serialization;
using OrleansLsn.Runtime.Transport;

namespace OrleansLsn.Runtime;

/// <summary>
/// The silo's message center. Requests from clients and from local grains are routed by target: a grain goes to its
/// activation through the <see cref="Catalog"/> (placement is local until the cluster issue adds an
/// <see cref="IPlacementDirector"/> with remote silos), an observer goes to the connection of the client that created
/// it. A call to an observer whose client is not connected fails at once with <see cref="ClientNotAvailableException"/>,
/// and so do calls in flight when that client's connection closes.
/// </summary>
internal sealed partial class SiloRuntime : CallRuntime, IFrameHandler
{
    private static readonly TimeSpan CalleeDeadlineGrace = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<Guid, ClientSession> _clients = new();
    private readonly ConcurrentDictionary<(IReplySink Sink, long Id), CancellationTokenSource> _cancellable = new();
    private readonly ILogger _logger;
    private readonly LocalSink _local;

    public SiloRuntime(
        SiloOptions options,
        GrainCollectionOptions collection,
        InterfaceRegistry interfaces,
        GrainTypeRegistry grainTypes,
        IPlacementDirector placement,
        IServiceProvider services,
        ILogger logger,
        TimeProvider timeProvider)
        : base(interfaces, options.ResponseTimeout, timeProvider, "silo")
    {
        Options = options;
        Collection = collection;
        GrainTypes = grainTypes;
        Placement = placement;
        Services = services;
        TimeProvider = timeProvider;
        _logger = logger;
        _local = new LocalSink(this);
        Catalog = new Catalog(this, logger);
        GrainFactory = new SiloGrainFactory(this);
    }

    public SiloOptions Options { get; }

    public GrainCollectionOptions Collection { get; }

    public GrainTypeRegistry GrainTypes { get; }

    public IPlacementDirector Placement { get; }

    public IServiceProvider Services { get; }

    public TimeProvider TimeProvider { get; }

    public Catalog Catalog { get; }

    public IGrainFactory GrainFactory { get; }

    public int ConnectedClients => _clients.Count;

    public bool IsClientConnected(Guid clientId) => _clients.ContainsKey(clientId);

    /// <summary>Registers an authenticated client connection; a newer connection of the same client replaces the old one.</summary>
    public void AttachClient(Connection connection, Guid clientId)
    {
        var session = new ClientSession(clientId, connection);
        connection.State = session;
        if (_clients.TryGetValue(clientId, out ClientSession? previous))
        {
            previous.Connection.Close(new IOException("Replaced by a newer connection of the same client."));
        }

        _clients[clientId] = session;
        connection.Start(this);
    }

    /// <summary>Closes every client connection (silo shutdown).</summary>
    public void CloseClients()
    {
        foreach (ClientSession session in _clients.Values)
        {
            session.Connection.Close(null);
        }
    }

    void IFrameHandler.OnFrame(Connection connection, ReadOnlySpan<byte> frame)
    {
        var session = (ClientSession)connection.State!;
        switch ((MessageKind)frame[0])
        {
            case MessageKind.Request:
                RequestMessage request = RequestMessage.Parse(frame);
                connection.EnterInbound();
                RuntimeMetrics.RequestReceived("silo");
                Dispatch(request, session);
                break;
            case MessageKind.Response:
                OnResponse(frame);
                break;
            case MessageKind.Cancel:
                var reader = new SpanReader(frame);
                reader.ReadByte();
                CancelRequest(session, (long)reader.ReadVarUInt64());
                break;
            default:
                throw new ConnectionProtocolException($"Unexpected frame kind {frame[0]} from a client.");
        }
    }

    void IFrameHandler.OnClosed(Connection connection, Exception? error)
    {
        if (connection.State is not ClientSession session)
        {
            return;
        }

        _clients.TryRemove(new KeyValuePair<Guid, ClientSession>(session.ClientId, session));
        FailCallsOn(
            connection,
            call => new ClientNotAvailableException($"The client {session.ClientId:N} disconnected before {call.Method.DisplayName} answered."),
            "client_unavailable");

        // Nobody will read the answers of this connection's requests: cancel the ones that can be cancelled.
        foreach (KeyValuePair<(IReplySink Sink, long Id), CancellationTokenSource> entry in _cancellable)
        {
            if (ReferenceEquals(entry.Key.Sink, session))
            {
                CancelRequest(session, entry.Key.Id);
            }
        }
    }

    /// <summary>Routes a request that arrived from a client or from a local grain.</summary>
    private void Dispatch(RequestMessage request, IReplySink sink)
    {
        if (request.Target.Kind != ReferenceKind.Grain)
        {
            request.ReleaseBody();
            Refuse(request, sink, ResponseStatus.UnknownInterface, "Only grains can be called through a silo.");
            return;
        }

        if (!GrainTypes.TryGet(request.Target.InterfaceId, out GrainClass? grainClass)
            || !Interfaces.TryGet(request.Target.InterfaceId, out InterfaceDescriptor? descriptor))
        {
            request.ReleaseBody();
            Refuse(request, sink, ResponseStatus.UnknownInterface, null);
            return;
        }

        if (!descriptor.ById.TryGetValue(request.MethodId, out MethodDescriptor? method))
        {
            request.ReleaseBody();
            Refuse(request, sink, ResponseStatus.UnknownMethod, null);
            return;
        }

        CancellationTokenSource? cancellation = null;
        if (method.CancellationTokenIndex >= 0)
        {
            cancellation = new CancellationTokenSource();
            if (request.TimeoutMs > 0)
            {
                // The caller cancels the callee when its timeout fires; this deadline is only a backstop for a lost
                // cancel message, so it comes a little later and the caller reports a timeout, not a cancellation.
                cancellation.CancelAfter(TimeSpan.FromMilliseconds(request.TimeoutMs) + CalleeDeadlineGrace);
            }

            _cancellable[(sink, request.Id)] = cancellation;
        }

        Catalog.Dispatch(new IncomingCall(request, method, sink, cancellation), grainClass);
    }

    private static void Refuse(RequestMessage request, IReplySink sink, ResponseStatus status, string? detail)
    {
        if (!request.IsOneWay)
        {
            sink.Reply(ResponseFrames.Error(request.Id, status, detail));
        }

        sink.Done();
    }

    private void CancelRequest(IReplySink sink, long id)
    {
        if (_cancellable.TryRemove((sink, id), out CancellationTokenSource? cancellation))
        {
            try
            {
                cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The request finished meanwhile.
            }
        }
    }

    internal void Untrack(IReplySink sink, long id) => _cancellable.TryRemove((sink, id), out _);

    protected override ValueTask SendRequestAsync(ReferenceAddress target, FrameBuffer frame, PendingCall? call)
    {
        if (target.Kind == ReferenceKind.Grain)
        {
            RequestMessage request;
            try
            {
                request = RequestMessage.Parse(frame.WrittenSpan[FrameFormat.LengthPrefixSize..]);
            }
            finally
            {
                frame.Dispose();
            }

            if (call is not null)
            {
                call.Channel = _local;
            }

            Dispatch(request, _local);
            return ValueTask.CompletedTask;
        }

        if (!_clients.TryGetValue(target.ClientId, out ClientSession? session))
        {
            frame.Dispose();
            return ValueTask.FromException(new ClientNotAvailableException(
                $"The client {target.ClientId:N} that owns {target} is not connected to this silo."));
        }

        if (call is not null)
        {
            call.Channel = session.Connection;
        }

        return SendToClientAsync(session, frame, call);
    }

    private static async ValueTask SendToClientAsync(ClientSession session, FrameBuffer frame, PendingCall? call)
    {
        if (!await session.Connection.SendAsync(frame).ConfigureAwait(false) || (call is not null && session.Connection.IsClosed))
        {
            throw new ClientNotAvailableException($"The client {session.ClientId:N} disconnected.");
        }
    }

    protected override void SendCancel(PendingCall call)
    {
        if (call.Channel == _local)
        {
            CancelRequest(_local, call.Id);
        }
        else if (call.Channel is Connection { IsClosed: false } connection)
        {
            _ = connection.SendAsync(ResponseFrames.Cancel(call.Id));
        }
    }

    public override ReferenceAddress GetAddress(object reference, Type declaredType)
    {
        if (reference is Grain grain && typeof(IGrainWithStringKey).IsAssignableFrom(declaredType))
        {
            // A grain may pass itself (`this`), as in Orleans.
            return ReferenceAddress.ForGrain(Interfaces.Get(declaredType).Id, grain.GetPrimaryKeyString());
        }

        return base.GetAddress(reference, declaredType);
    }

    public override void Dispose()
    {
        Catalog.Dispose();
        base.Dispose();
    }

    /// <summary>A client connection as a reply target.</summary>
    private sealed class ClientSession(Guid clientId, Connection connection) : IReplySink
    {
        public Guid ClientId { get; } = clientId;

        public Connection Connection { get; } = connection;

        public void Reply(FrameBuffer frame)
        {
            ValueTask<bool> sent = Connection.SendAsync(frame);
            if (!sent.IsCompleted)
            {
                _ = sent.AsTask();
            }
        }

        public void Done() => Connection.ExitInbound();
    }

    /// <summary>Replies to calls between grains of this silo: straight to the caller's pending call.</summary>
    private sealed class LocalSink(SiloRuntime runtime) : IReplySink
    {
        public void Reply(FrameBuffer frame)
        {
            using (frame)
            {
                runtime.OnResponse(frame.WrittenSpan[FrameFormat.LengthPrefixSize..]);
            }
        }

        public void Done()
        {
        }
    }
}
