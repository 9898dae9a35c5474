using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansLsn.Runtime;
using OrleansLsn.Runtime.Serialization;
using OrleansLsn.Runtime.Transport;

namespace OrleansLsn.Tests.GrainRuntime;

/// <summary>A raw TCP peer for protocol tests: optionally completes the real handshake, then writes arbitrary bytes.</summary>
internal sealed class RawPeer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly Connection _connection;

    private RawPeer(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _connection = Connection.ForSocket(socket, _stream, new ConnectionOptions(), NullLogger.Instance, "client");
    }

    public static async Task<RawPeer> ConnectAsync(int port, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", port, cancellationToken);
        return new RawPeer(socket);
    }

    /// <summary>Authenticates with the real handshake.</summary>
    public Task<string> HandshakeAsync(string secret, CancellationToken cancellationToken) =>
        Handshake.ConnectAsync(_connection, "dev", Encoding.UTF8.GetBytes(secret), Guid.NewGuid(), Handshake.PeerRole.Client, cancellationToken);

    public async Task SendAsync(byte[] bytes, CancellationToken cancellationToken)
    {
        try
        {
            await _stream.WriteAsync(bytes, cancellationToken);
            await _stream.FlushAsync(cancellationToken);
        }
        catch (IOException)
        {
            // The silo may already have closed the connection; that is what the tests look for.
        }
    }

    /// <summary>Sends a well-formed frame with this body (kind byte first).</summary>
    public Task SendFrameAsync(byte[] body, CancellationToken cancellationToken)
    {
        byte[] frame = new byte[body.Length + 4];
        BitConverter.TryWriteBytes(frame, body.Length);
        body.CopyTo(frame, 4);
        return SendAsync(frame, cancellationToken);
    }

    /// <summary>Reads the next frame; null when the silo closed the connection.</summary>
    public async Task<byte[]?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _connection.ReadHandshakeFrameAsync(1024 * 1024, cancellationToken);
        }
        catch (Exception e) when (e is IOException or SocketException or ConnectionProtocolException)
        {
            return null;
        }
    }

    /// <summary>Completes when the silo has closed the connection (reads until end of stream).</summary>
    public async Task WaitForCloseAsync(CancellationToken cancellationToken)
    {
        while (await ReadFrameAsync(cancellationToken) is not null)
        {
        }
    }

    public static byte[] Request(uint interfaceId, string key, uint methodId, byte[] args)
    {
        using var frame = new FrameBuffer();
        OrleansLsn.Runtime.Messaging.RequestMessage.WriteHeader(frame, 1, OrleansLsn.Runtime.Messaging.RequestFlags.None, ReferenceAddress.ForGrain(interfaceId, key), methodId, 5000, 0, []);
        frame.WriteBytes(args);
        return frame.WrittenSpan[4..].ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
        _socket.Dispose();
    }
}
