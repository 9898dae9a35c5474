using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// The raw round trip for one outstanding request: send the frame on the socket, then receive the whole echo, on the
/// caller's own flow (no queue, no background loop). Blocking: plain <see cref="Socket.Send(byte[])"/> and
/// <see cref="Socket.Receive(byte[])"/>, the caller's thread waits in the kernel (the floor). Asynchronous:
/// <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/> and
/// <see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/>, what any async .NET client pays
/// (epoll and a thread-pool hop per receive). Not thread-safe: one call at a time.
/// </summary>
internal sealed class DirectEchoClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly bool _blocking;
    private readonly byte[] _request;
    private readonly byte[] _response;

    private DirectEchoClient(Socket socket, bool blocking, int payloadBytes)
    {
        _socket = socket;
        _blocking = blocking;
        _request = new byte[EchoFrames.PrefixSize + payloadBytes];
        _response = new byte[EchoFrames.PrefixSize + payloadBytes];
        BinaryPrimitives.WriteInt32LittleEndian(_request, payloadBytes);
    }

    public static async Task<DirectEchoClient> ConnectAsync(IPEndPoint server, bool blocking, int payloadBytes, CancellationToken cancellationToken)
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

        return new DirectEchoClient(socket, blocking, payloadBytes);
    }

    /// <summary>Sends <paramref name="payload"/> and returns the echoed copy.</summary>
    /// <exception cref="IOException">The server closed the connection or echoed something else.</exception>
    public ValueTask<byte[]> RoundTripAsync(byte[] payload)
    {
        if (payload.Length != _request.Length - EchoFrames.PrefixSize)
        {
            throw new ArgumentException($"This client sends {_request.Length - EchoFrames.PrefixSize}-byte payloads.", nameof(payload));
        }

        payload.CopyTo(_request, EchoFrames.PrefixSize);
        return _blocking ? new ValueTask<byte[]>(RoundTripBlocking()) : RoundTripNonBlockingAsync();
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private byte[] RoundTripBlocking()
    {
        int sent = 0;
        while (sent < _request.Length)
        {
            sent += _socket.Send(_request, sent, _request.Length - sent, SocketFlags.None);
        }

        int received = 0;
        while (received < _response.Length)
        {
            int read = _socket.Receive(_response, received, _response.Length - received, SocketFlags.None);
            if (read == 0)
            {
                throw new IOException("The echo server closed the connection.");
            }

            received += read;
        }

        return Reply();
    }

    private async ValueTask<byte[]> RoundTripNonBlockingAsync()
    {
        int sent = 0;
        while (sent < _request.Length)
        {
            sent += await _socket.SendAsync(_request.AsMemory(sent), SocketFlags.None).ConfigureAwait(false);
        }

        int received = 0;
        while (received < _response.Length)
        {
            int read = await _socket.ReceiveAsync(_response.AsMemory(received), SocketFlags.None).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException("The echo server closed the connection.");
            }

            received += read;
        }

        return Reply();
    }

    private byte[] Reply()
    {
        if (BinaryPrimitives.ReadInt32LittleEndian(_response) != _response.Length - EchoFrames.PrefixSize)
        {
            throw new IOException("The echo server answered with a frame of another length.");
        }

        return _response.AsSpan(EchoFrames.PrefixSize).ToArray();
    }
}
