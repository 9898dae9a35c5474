using System.Security.Cryptography;
using System.Text;
using OrleansLsn.Runtime.Messaging;
using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Transport;

/// <summary>
/// Mutual challenge-response on the cluster secret; the secret itself never crosses the wire. The silo sends a
/// nonce; the client answers with its own nonce and HMAC-SHA256(secret, "client" | both nonces | cluster id | client
/// id); the silo checks it in constant time and answers with HMAC(secret, "silo" | both nonces), so the client also
/// knows it reached a silo of its cluster. Nothing else is read from a peer before this succeeds.
/// </summary>
internal static class Handshake
{
    public const ushort ProtocolVersion = 1;
    public const int MaxFrameSize = 1024;
    private const int NonceSize = 32;

    /// <summary>The role of the connecting peer; silos will connect to each other later.</summary>
    public enum PeerRole : byte
    {
        Client = 1,
        Silo = 2,
    }

    public sealed record HelloResult(Guid PeerId, PeerRole Role);

    /// <summary>The silo's side. Throws <see cref="ClusterConnectionRefusedException"/> after telling the peer why.</summary>
    public static async Task<HelloResult> AcceptAsync(Connection connection, string clusterId, byte[] secret, string siloName, CancellationToken cancellationToken)
    {
        byte[] siloNonce = RandomNumberGenerator.GetBytes(NonceSize);
        var challenge = new FrameBuffer(64);
        challenge.WriteByte((byte)MessageKind.Challenge);
        challenge.WriteUInt32(ProtocolVersion);
        challenge.WriteBytes(siloNonce);
        await connection.WriteHandshakeFrameAsync(challenge, cancellationToken).ConfigureAwait(false);

        byte[] hello = await connection.ReadHandshakeFrameAsync(MaxFrameSize, cancellationToken).ConfigureAwait(false)
            ?? throw new ConnectionProtocolException("The peer closed the connection before its hello.");
        uint version;
        PeerRole role;
        string peerCluster;
        Guid peerId;
        byte[] peerNonce;
        byte[] proof;
        try
        {
            var reader = new SpanReader(hello);
            if (reader.ReadByte() != (byte)MessageKind.Hello)
            {
                throw new ConnectionProtocolException("The first frame is not a hello.");
            }

            version = reader.ReadUInt32();
            role = (PeerRole)reader.ReadByte();
            peerCluster = reader.ReadRequiredString();
            peerId = reader.ReadGuid();
            peerNonce = reader.ReadBytes(NonceSize).ToArray();
            proof = reader.ReadBytes(32).ToArray();
        }
        catch (GrainSerializationException e)
        {
            throw new ConnectionProtocolException("Malformed hello: " + e.Message, e);
        }

        string? refusal = null;
        if (version != ProtocolVersion)
        {
            refusal = $"protocol version {version} is not supported (this silo speaks {ProtocolVersion})";
        }
        else if (role is not (PeerRole.Client or PeerRole.Silo))
        {
            refusal = $"unknown peer role {(byte)role}";
        }
        else if (!CryptographicOperations.FixedTimeEquals(proof, PeerProof(secret, siloNonce, peerNonce, peerCluster, peerId)))
        {
            refusal = "the cluster secret is wrong or missing";
        }
        else if (!string.Equals(peerCluster, clusterId, StringComparison.Ordinal))
        {
            refusal = $"the client wants cluster '{peerCluster}', this silo belongs to another cluster";
        }

        if (refusal is not null)
        {
            var refused = new FrameBuffer(128);
            refused.WriteByte((byte)MessageKind.Refused);
            refused.WriteString(refusal);
            await connection.WriteHandshakeFrameAsync(refused, cancellationToken).ConfigureAwait(false);
            throw new ClusterConnectionRefusedException(refusal);
        }

        var welcome = new FrameBuffer(128);
        welcome.WriteByte((byte)MessageKind.Welcome);
        welcome.WriteString(siloName);
        welcome.WriteBytes(SiloProof(secret, siloNonce, peerNonce));
        await connection.WriteHandshakeFrameAsync(welcome, cancellationToken).ConfigureAwait(false);
        return new HelloResult(peerId, role);
    }

    /// <summary>The client's side; returns the silo's name. Throws <see cref="ClusterConnectionRefusedException"/> when refused.</summary>
    public static async Task<string> ConnectAsync(Connection connection, string clusterId, byte[] secret, Guid clientId, PeerRole role, CancellationToken cancellationToken)
    {
        byte[] challenge = await connection.ReadHandshakeFrameAsync(MaxFrameSize, cancellationToken).ConfigureAwait(false)
            ?? throw new SiloUnavailableException($"The silo at {connection.RemoteEndPoint} closed the connection before its challenge.");
        byte[] siloNonce;
        try
        {
            var reader = new SpanReader(challenge);
            if (reader.ReadByte() != (byte)MessageKind.Challenge)
            {
                throw new ClusterConnectionRefusedException($"The peer at {connection.RemoteEndPoint} is not an OrleansLsn silo.");
            }

            uint version = reader.ReadUInt32();
            if (version != ProtocolVersion)
            {
                throw new ClusterConnectionRefusedException($"The silo speaks protocol version {version}; this client speaks {ProtocolVersion}.");
            }

            siloNonce = reader.ReadBytes(NonceSize).ToArray();
        }
        catch (GrainSerializationException e)
        {
            throw new ClusterConnectionRefusedException($"The peer at {connection.RemoteEndPoint} sent a malformed challenge.", e);
        }

        byte[] clientNonce = RandomNumberGenerator.GetBytes(NonceSize);
        var hello = new FrameBuffer(160);
        hello.WriteByte((byte)MessageKind.Hello);
        hello.WriteUInt32(ProtocolVersion);
        hello.WriteByte((byte)role);
        hello.WriteString(clusterId);
        hello.WriteGuid(clientId);
        hello.WriteBytes(clientNonce);
        hello.WriteBytes(PeerProof(secret, siloNonce, clientNonce, clusterId, clientId));
        await connection.WriteHandshakeFrameAsync(hello, cancellationToken).ConfigureAwait(false);

        byte[] answer = await connection.ReadHandshakeFrameAsync(MaxFrameSize, cancellationToken).ConfigureAwait(false)
            ?? throw new ClusterConnectionRefusedException($"The silo at {connection.RemoteEndPoint} closed the connection during the handshake.");
        try
        {
            var reader = new SpanReader(answer);
            switch ((MessageKind)reader.ReadByte())
            {
                case MessageKind.Refused:
                    throw new ClusterConnectionRefusedException($"The silo at {connection.RemoteEndPoint} refused the connection: {reader.ReadString()}.");
                case MessageKind.Welcome:
                    string siloName = reader.ReadRequiredString();
                    byte[] proof = reader.ReadBytes(32).ToArray();
                    if (!CryptographicOperations.FixedTimeEquals(proof, SiloProof(secret, siloNonce, clientNonce)))
                    {
                        throw new ClusterConnectionRefusedException($"The peer at {connection.RemoteEndPoint} could not prove it knows the cluster secret.");
                    }

                    return siloName;
                default:
                    throw new ClusterConnectionRefusedException($"The peer at {connection.RemoteEndPoint} sent an unexpected handshake frame.");
            }
        }
        catch (GrainSerializationException e)
        {
            throw new ClusterConnectionRefusedException($"The peer at {connection.RemoteEndPoint} sent a malformed handshake frame.", e);
        }
    }

    private static byte[] PeerProof(byte[] secret, byte[] siloNonce, byte[] peerNonce, string clusterId, Guid peerId)
    {
        byte[] cluster = Encoding.UTF8.GetBytes(clusterId);
        byte[] data = new byte[6 + siloNonce.Length + peerNonce.Length + cluster.Length + 16];
        Span<byte> span = data;
        "client"u8.CopyTo(span);
        siloNonce.CopyTo(span[6..]);
        peerNonce.CopyTo(span[(6 + NonceSize)..]);
        cluster.CopyTo(span[(6 + (2 * NonceSize))..]);
        peerId.TryWriteBytes(span[(6 + (2 * NonceSize) + cluster.Length)..]);
        return HMACSHA256.HashData(secret, data);
    }

    private static byte[] SiloProof(byte[] secret, byte[] siloNonce, byte[] peerNonce)
    {
        byte[] data = new byte[4 + (2 * NonceSize)];
        "silo"u8.CopyTo(data);
        siloNonce.CopyTo(data, 4);
        peerNonce.CopyTo(data, 4 + NonceSize);
        return HMACSHA256.HashData(secret, data);
    }
}
