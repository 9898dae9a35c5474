using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// The anchors' server, on two loopback listeners. <see cref="EndPoint"/> is asynchronous: each connection reads with a
/// <see cref="PipeReader"/>, copies every whole length-prefixed frame (<see cref="EchoFrames"/>) it has to a
/// <see cref="PipeWriter"/> and flushes once per read, so pipelined requests share system calls (as the runtime's
/// connections do). <see cref="BlockingEndPoint"/> gives each connection a dedicated thread that sends back whatever
/// it receives with blocking socket calls: the bare round trip, no epoll wake-up or thread-pool hop.
/// </summary>
internal sealed class EchoServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly Socket _blockingListener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _connections = [];
    private readonly List<Socket> _blockingSockets = [];
    private readonly Lock _lock = new();
    private Task _acceptLoop = Task.CompletedTask;
    private Task _blockingAcceptLoop = Task.CompletedTask;

    private EchoServer(Socket listener, Socket blockingListener)
    {
        _listener = listener;
        _blockingListener = blockingListener;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        BlockingEndPoint = (IPEndPoint)blockingListener.LocalEndPoint!;
    }

    /// <summary>The asynchronous, framed, pipelining echo.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>The byte echo on a blocking thread per connection.</summary>
    public IPEndPoint BlockingEndPoint { get; }

    /// <summary>Listens on two free loopback ports and starts accepting.</summary>
    public static EchoServer Start()
    {
        Socket listener = Listen();
        Socket blockingListener;
        try
        {
            blockingListener = Listen();
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        var server = new EchoServer(listener, blockingListener);
        server._acceptLoop = Task.Run(server.AcceptLoopAsync, CancellationToken.None);
        server._blockingAcceptLoop = Task.Run(server.BlockingAcceptLoopAsync, CancellationToken.None);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        _blockingListener.Dispose();
        Task[] connections;
        lock (_lock)
        {
            connections = [.. _connections];
            foreach (Socket socket in _blockingSockets)
            {
                socket.Dispose();
            }
        }

        await Task.WhenAll(connections.Append(_acceptLoop).Append(_blockingAcceptLoop)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
    }

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(16);
            return listener;
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    private Task AcceptLoopAsync() => AcceptEachAsync(_listener, socket =>
    {
        lock (_lock)
        {
            _connections.Add(Task.Run(() => ServeAsync(socket, _stopping.Token), CancellationToken.None));
        }
    });

    private Task BlockingAcceptLoopAsync() => AcceptEachAsync(_blockingListener, socket =>
    {
        lock (_lock)
        {
            _blockingSockets.Add(socket);
        }

        new Thread(() => ServeBlocking(socket)) { IsBackground = true, Name = "bench blocking echo" }.Start();
    });

    private async Task AcceptEachAsync(Socket listener, Action<Socket> serve)
    {
        CancellationToken token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            socket.NoDelay = true;
            serve(socket);
        }
    }

    private static async Task ServeAsync(Socket socket, CancellationToken cancellationToken)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        PipeReader reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true));
        PipeWriter writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                bool echoed = false;
                while (EchoFrames.TryRead(ref buffer, out ReadOnlySequence<byte> frame))
                {
                    foreach (ReadOnlyMemory<byte> segment in frame)
                    {
                        writer.Write(segment.Span);
                    }

                    echoed = true;
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
                if (echoed)
                {
                    await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
                }

                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or InvalidDataException)
        {
            // The client went away, the server is stopping, or the client broke the framing: drop the connection.
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }
    }

    private static void ServeBlocking(Socket socket)
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int received = socket.Receive(buffer);
                if (received == 0)
                {
                    return;
                }

                int sent = 0;
                while (sent < received)
                {
                    sent += socket.Send(buffer, sent, received - sent, SocketFlags.None);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The client went away or the server is stopping.
        }
        finally
        {
            socket.Dispose();
        }
    }
}
