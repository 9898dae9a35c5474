using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Transport;

/// <summary>
/// One framed, multiplexed TCP connection over <see cref="System.IO.Pipelines"/>. A read loop parses frames and hands
/// them to an <see cref="IFrameHandler"/>; a write loop drains a bounded queue of frames and flushes once the queue is
/// empty, so concurrent calls share system calls. Backpressure both ways: senders wait when the queue is full, and
/// the read loop stops reading while too many received requests are unanswered.
/// </summary>
internal sealed partial class Connection : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly Socket? _socket;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly Channel<FrameBuffer> _sendQueue;
    private readonly ConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _capacityLock = new();
    private TaskCompletionSource? _capacityWaiter;
    private IFrameHandler? _handler;
    private Task _readLoop = Task.CompletedTask;
    private Task _writeLoop = Task.CompletedTask;
    private int _inFlight;
    private int _closeStarted;

    public Connection(Stream stream, Socket? socket, EndPoint? remoteEndPoint, ConnectionOptions options, ILogger logger, string role)
    {
        _stream = stream;
        _socket = socket;
        _options = options;
        _logger = logger;
        Role = role;
        RemoteEndPoint = remoteEndPoint?.ToString() ?? "?";
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 8 * 1024, leaveOpen: true));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        _sendQueue = Channel.CreateBounded<FrameBuffer>(new BoundedChannelOptions(options.SendQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>"client" or "silo": which side of the link this process is.</summary>
    public string Role { get; }

    public string RemoteEndPoint { get; }

    /// <summary>Set by the owner after the handshake, e.g. the client id.</summary>
    public object? State { get; set; }

    public bool IsClosed => Volatile.Read(ref _closeStarted) != 0;

    /// <summary>Completes when the connection has closed and its loops have ended.</summary>
    public Task Completion => _closed.Task;

    public CancellationToken Closing => _closing.Token;

    public static Connection ForSocket(Socket socket, Stream stream, ConnectionOptions options, ILogger logger, string role)
    {
        socket.NoDelay = true;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        return new Connection(stream, socket, socket.RemoteEndPoint, options, logger, role);
    }

    /// <summary>Reads one frame before the loops start (the handshake), with a small size limit. Returns null at end of stream.</summary>
    public async ValueTask<byte[]?> ReadHandshakeFrameAsync(int maxSize, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            if (TryReadFrame(ref buffer, maxSize, out ReadOnlySequence<byte> frame))
            {
                byte[] copy = frame.ToArray();
                _reader.AdvanceTo(buffer.Start);
                return copy;
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return buffer.Length == 0 ? null : throw new ConnectionProtocolException("The connection closed in the middle of a handshake frame.");
            }
        }
    }

    /// <summary>Writes and flushes one frame before the loops start. Disposes the frame.</summary>
    public async ValueTask WriteHandshakeFrameAsync(FrameBuffer frame, CancellationToken cancellationToken)
    {
        using (frame)
        {
            frame.Complete();
            await _writer.WriteAsync(frame.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Starts the read and write loops.</summary>
    public void Start(IFrameHandler handler)
    {
        _handler = handler;
        RuntimeMetrics.ConnectionOpened(Role);
        _writeLoop = Task.Run(WriteLoopAsync);
        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>Queues a completed frame; the connection owns it from here. Returns false (and disposes it) if the connection is closed.</summary>
    public ValueTask<bool> SendAsync(FrameBuffer frame, CancellationToken cancellationToken = default)
    {
        if (_sendQueue.Writer.TryWrite(frame))
        {
            return new ValueTask<bool>(true);
        }

        return SendSlowAsync(frame, cancellationToken);
    }

    private async ValueTask<bool> SendSlowAsync(FrameBuffer frame, CancellationToken cancellationToken)
    {
        try
        {
            await _sendQueue.Writer.WriteAsync(frame, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ChannelClosedException)
        {
            frame.Dispose();
            return false;
        }
        catch (OperationCanceledException)
        {
            frame.Dispose();
            throw;
        }
    }

    /// <summary>A received request is being processed; the read loop pauses while too many are.</summary>
    public void EnterInbound() => Interlocked.Increment(ref _inFlight);

    /// <summary>A received request has been answered.</summary>
    public void ExitInbound()
    {
        if (Interlocked.Decrement(ref _inFlight) < _options.MaxInboundInFlight)
        {
            TaskCompletionSource? waiter;
            lock (_capacityLock)
            {
                waiter = _capacityWaiter;
                _capacityWaiter = null;
            }

            waiter?.TrySetResult();
        }
    }

    /// <summary>Closes the connection; <paramref name="error"/> null means an orderly close. Idempotent.</summary>
    public void Close(Exception? error)
    {
        if (Interlocked.Exchange(ref _closeStarted, 1) != 0)
        {
            return;
        }

        if (error is null)
        {
            LogClosed(_logger, Role, RemoteEndPoint);
        }
        else if (error is ConnectionProtocolException or GrainSerializationException)
        {
            LogProtocolViolation(_logger, Role, RemoteEndPoint, error.Message);
            RuntimeMetrics.InvalidFrame(Role);
        }
        else
        {
            LogLost(_logger, Role, RemoteEndPoint, error.Message);
        }

        _sendQueue.Writer.TryComplete();
        _closing.Cancel();
        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        _socket?.Dispose();
        if (_handler is not null)
        {
            RuntimeMetrics.ConnectionClosed(Role);
            _handler.OnClosed(this, error);
        }

        _ = FinishCloseAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Close(null);
        await _closed.Task.ConfigureAwait(false);
    }

    private async Task FinishCloseAsync()
    {
        try
        {
            await Task.WhenAll(_readLoop, _writeLoop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            while (_sendQueue.Reader.TryRead(out FrameBuffer? frame))
            {
                frame.Dispose();
            }

            // Completing the writer may try to flush to a socket that is already gone; that is expected here.
            await IgnoreFailureAsync(_reader.CompleteAsync()).ConfigureAwait(false);
            await IgnoreFailureAsync(_writer.CompleteAsync()).ConfigureAwait(false);
            await IgnoreFailureAsync(_stream.DisposeAsync()).ConfigureAwait(false);
            _closing.Dispose();
        }
        finally
        {
            _closed.TrySetResult();
        }
    }

    private static async Task IgnoreFailureAsync(ValueTask pending)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Cleanup of a closed connection: any failure means it is already gone.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private async Task ReadLoopAsync()
    {
        Exception? error = null;
        CancellationToken token = _closing.Token;
        try
        {
            while (true)
            {
                if (Volatile.Read(ref _inFlight) >= _options.MaxInboundInFlight)
                {
                    await WaitForCapacityAsync(token).ConfigureAwait(false);
                }

                ReadResult result = await _reader.ReadAsync(token).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                while (TryReadFrame(ref buffer, _options.MaxFrameSize, out ReadOnlySequence<byte> frame))
                {
                    Dispatch(frame);
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    if (buffer.Length > 0)
                    {
                        error = new ConnectionProtocolException($"The connection closed with a truncated frame ({buffer.Length} bytes pending).");
                    }

                    break;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Closing.
        }
#pragma warning disable CA1031 // Any failure of the read loop closes this connection only, never the process.
        catch (Exception e)
#pragma warning restore CA1031
        {
            error = e;
        }

        Close(error);
    }

    private void Dispatch(ReadOnlySequence<byte> frame)
    {
        if (frame.IsSingleSegment)
        {
            _handler!.OnFrame(this, frame.FirstSpan);
            return;
        }

        int length = (int)frame.Length;
        byte[] copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            frame.CopyTo(copy);
            _handler!.OnFrame(this, copy.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    private async Task WaitForCapacityAsync(CancellationToken cancellationToken)
    {
        while (Volatile.Read(ref _inFlight) >= _options.MaxInboundInFlight)
        {
            Task wait;
            lock (_capacityLock)
            {
                _capacityWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _capacityWaiter.Task;
            }

            // Re-check after publishing the waiter, so a release in between is not missed.
            if (Volatile.Read(ref _inFlight) < _options.MaxInboundInFlight)
            {
                return;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WriteLoopAsync()
    {
        Exception? error = null;
        CancellationToken token = _closing.Token;
        ChannelReader<FrameBuffer> queue = _sendQueue.Reader;
        try
        {
            while (await queue.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (queue.TryRead(out FrameBuffer? frame))
                {
                    _writer.Write(frame.WrittenSpan);
                    frame.Dispose();
                    if (_writer.UnflushedBytes > 256 * 1024)
                    {
                        await _writer.FlushAsync(token).ConfigureAwait(false);
                    }
                }

                FlushResult flushed = await _writer.FlushAsync(token).ConfigureAwait(false);
                if (flushed.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Closing.
        }
#pragma warning disable CA1031 // Any failure of the write loop closes this connection only.
        catch (Exception e)
#pragma warning restore CA1031
        {
            error = e;
        }

        Close(error);
    }

    private static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxSize, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < FrameFormat.LengthPrefixSize)
        {
            return false;
        }

        Span<byte> prefix = stackalloc byte[FrameFormat.LengthPrefixSize];
        buffer.Slice(0, FrameFormat.LengthPrefixSize).CopyTo(prefix);
        int length = BinaryPrimitives.ReadInt32LittleEndian(prefix);
        if (length < FrameFormat.MinimumFrameLength || length > maxSize)
        {
            throw new ConnectionProtocolException($"Invalid frame length {length} (allowed 1..{maxSize}).");
        }

        if (buffer.Length < FrameFormat.LengthPrefixSize + length)
        {
            return false;
        }

        frame = buffer.Slice(FrameFormat.LengthPrefixSize, length);
        buffer = buffer.Slice(frame.End);
        return true;
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Debug, Message = "The {Role}'s connection with {RemoteEndPoint} closed")]
    private static partial void LogClosed(ILogger logger, string role, string remoteEndPoint);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "The {Role} closed its connection with {RemoteEndPoint}, which broke the protocol: {Reason}")]
    private static partial void LogProtocolViolation(ILogger logger, string role, string remoteEndPoint, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "The {Role}'s connection with {RemoteEndPoint} was lost: {Reason}")]
    private static partial void LogLost(ILogger logger, string role, string remoteEndPoint, string reason);
}
