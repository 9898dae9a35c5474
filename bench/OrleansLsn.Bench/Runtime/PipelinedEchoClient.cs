using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// The raw round trip when many callers share one connection: callers queue requests on a channel; a write loop
/// writes them in order, records each caller's completion in a FIFO before its bytes can leave, and flushes once the
/// channel is empty; a read loop completes the FIFO's head for every echoed frame (the echo keeps the order). Same
/// shape as the runtime's connection (channel, write loop with coalesced flushes, read loop, continuations on the
/// thread pool), minus the message format, the routing and the grain scheduling.
/// </summary>
internal sealed class PipelinedEchoClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly Channel<Request> _requests = Channel.CreateUnbounded<Request>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentQueue<TaskCompletionSource<byte[]>> _awaiting = new();
    private readonly CancellationTokenSource _closing = new();
    private Task _writeLoop = Task.CompletedTask;
    private Task _readLoop = Task.CompletedTask;
    private Exception? _failure;

    private PipelinedEchoClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        _writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
    }

    public static async Task<PipelinedEchoClient> ConnectAsync(IPEndPoint server, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new PipelinedEchoClient(socket);
        client._writeLoop = Task.Run(client.WriteLoopAsync, CancellationToken.None);
        client._readLoop = Task.Run(client.ReadLoopAsync, CancellationToken.None);
        return client;
    }

    /// <summary>Sends <paramref name="payload"/> and completes with the echoed copy.</summary>
    public Task<byte[]> RoundTripAsync(byte[] payload)
    {
        var reply = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_requests.Writer.TryWrite(new Request(payload, reply)))
        {
            reply.TrySetException(new IOException("The echo connection is closed.", Volatile.Read(ref _failure)));
        }

        return reply.Task;
    }

    public async ValueTask DisposeAsync()
    {
        Fail(new ObjectDisposedException(nameof(PipelinedEchoClient)));
        await Task.WhenAll(_writeLoop, _readLoop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _reader.CompleteAsync().ConfigureAwait(false);
        await _writer.CompleteAsync().ConfigureAwait(false);
        await _stream.DisposeAsync().ConfigureAwait(false);
        _closing.Dispose();
    }

    private async Task WriteLoopAsync()
    {
        CancellationToken token = _closing.Token;
        ChannelReader<Request> requests = _requests.Reader;
        try
        {
            while (await requests.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (requests.TryRead(out Request request))
                {
                    _awaiting.Enqueue(request.Reply);
                    EchoFrames.Write(_writer, request.Payload);
                    if (_writer.UnflushedBytes > 256 * 1024)
                    {
                        await _writer.FlushAsync(token).ConfigureAwait(false);
                    }
                }

                await _writer.FlushAsync(token).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // Any failure closes this connection and fails every waiting caller.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(e);
        }
        finally
        {
            // Callers this loop took from the channel after another failure drained the FIFO: fail them too.
            Fail(new IOException("The echo connection closed."));
        }
    }

    private async Task ReadLoopAsync()
    {
        CancellationToken token = _closing.Token;
        try
        {
            while (true)
            {
                ReadResult result = await _reader.ReadAsync(token).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                while (EchoFrames.TryRead(ref buffer, out ReadOnlySequence<byte> frame))
                {
                    if (!_awaiting.TryDequeue(out TaskCompletionSource<byte[]>? reply))
                    {
                        throw new InvalidDataException("The echo server sent a frame nobody asked for.");
                    }

                    reply.TrySetResult(frame.Slice(EchoFrames.PrefixSize).ToArray());
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    throw new IOException("The echo server closed the connection.");
                }
            }
        }
#pragma warning disable CA1031 // Any failure closes this connection and fails every waiting caller.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(e);
        }
    }

    private void Fail(Exception error)
    {
        Interlocked.CompareExchange(ref _failure, error, null);
        _requests.Writer.TryComplete();
        try
        {
            _closing.Cancel();
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }

        Exception reason = Volatile.Read(ref _failure)!;
        while (_requests.Reader.TryRead(out Request request))
        {
            request.Reply.TrySetException(new IOException("The echo connection closed.", reason));
        }

        while (_awaiting.TryDequeue(out TaskCompletionSource<byte[]>? reply))
        {
            reply.TrySetException(new IOException("The echo connection closed.", reason));
        }
    }

    private readonly record struct Request(byte[] Payload, TaskCompletionSource<byte[]> Reply);
}
