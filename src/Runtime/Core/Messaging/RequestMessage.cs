using System.Buffers;
using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Messaging;

/// <summary>
/// A request as it travels: a header that routing needs (target, method, timeout, call chain, hop count) and the
/// serialized arguments, which only the destination reads. A silo can therefore forward it without deserializing.
/// The body is a pooled array owned by the message until <see cref="ReleaseBody"/>.
/// </summary>
internal sealed class RequestMessage
{
    public const int MaxCallChain = 64;

    public long Id { get; init; }

    public RequestFlags Flags { get; init; }

    public ReferenceAddress Target { get; init; }

    public uint MethodId { get; init; }

    /// <summary>Time left for the call when it was sent, in milliseconds; 0 means none.</summary>
    public uint TimeoutMs { get; init; }

    /// <summary>How many silos have forwarded this message (for a later multi-silo cluster).</summary>
    public byte ForwardCount { get; init; }

    /// <summary>The grains waiting on this call, innermost last: used for call-chain reentrancy.</summary>
    public GrainId[] CallChain { get; init; } = [];

    public byte[] Body { get; private set; } = [];

    public int BodyLength { get; private set; }

    public bool IsOneWay => (Flags & RequestFlags.OneWay) != 0;

    public ReadOnlySpan<byte> BodySpan => Body.AsSpan(0, BodyLength);

    public void ReleaseBody()
    {
        byte[] body = Body;
        Body = [];
        BodyLength = 0;
        if (body.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(body);
        }
    }

    /// <summary>Writes the header after the length prefix; the arguments follow, then <see cref="FrameBuffer.Complete"/>.</summary>
    public static void WriteHeader(FrameBuffer writer, long id, RequestFlags flags, ReferenceAddress target, uint methodId, uint timeoutMs, byte forwardCount, ReadOnlySpan<GrainId> callChain)
    {
        writer.WriteByte((byte)MessageKind.Request);
        writer.WriteVarUInt64((ulong)id);
        writer.WriteByte((byte)flags);
        writer.WriteByte((byte)target.Kind);
        writer.WriteUInt32(target.InterfaceId);
        if (target.Kind == ReferenceKind.Grain)
        {
            writer.WriteString(target.Key);
        }
        else
        {
            writer.WriteGuid(target.ClientId);
            writer.WriteGuid(target.ObserverId);
        }

        writer.WriteUInt32(methodId);
        writer.WriteVarUInt64(timeoutMs);
        writer.WriteByte(forwardCount);
        writer.WriteVarUInt64((ulong)callChain.Length);
        foreach (GrainId link in callChain)
        {
            writer.WriteString(link.Type);
            writer.WriteString(link.Key);
        }
    }

    /// <summary>Parses a request frame body (after the kind byte has been checked by the caller).</summary>
    public static RequestMessage Parse(ReadOnlySpan<byte> frame)
    {
        var reader = new SpanReader(frame);
        if (reader.ReadByte() != (byte)MessageKind.Request)
        {
            throw new GrainSerializationException("Not a request.");
        }

        long id = (long)reader.ReadVarUInt64();
        var flags = (RequestFlags)reader.ReadByte();
        byte kind = reader.ReadByte();
        uint interfaceId = reader.ReadUInt32();
        ReferenceAddress target = kind switch
        {
            (byte)ReferenceKind.Grain => ReferenceAddress.ForGrain(interfaceId, reader.ReadRequiredString()),
            (byte)ReferenceKind.Observer => ReferenceAddress.ForObserver(interfaceId, reader.ReadGuid(), reader.ReadGuid()),
            _ => throw new GrainSerializationException($"Invalid target kind {kind}."),
        };
        uint methodId = reader.ReadUInt32();
        ulong timeout = reader.ReadVarUInt64();
        byte forwardCount = reader.ReadByte();
        int chainLength = reader.ReadCount();
        if (chainLength > MaxCallChain)
        {
            throw new GrainSerializationException($"A call chain of {chainLength} grains is longer than {MaxCallChain}.");
        }

        var chain = chainLength == 0 ? [] : new GrainId[chainLength];
        for (int i = 0; i < chainLength; i++)
        {
            chain[i] = new GrainId(reader.ReadRequiredString(), reader.ReadRequiredString());
        }

        ReadOnlySpan<byte> body = reader.Rest;
        var message = new RequestMessage
        {
            Id = id,
            Flags = flags,
            Target = target,
            MethodId = methodId,
            TimeoutMs = (uint)Math.Min(timeout, uint.MaxValue),
            ForwardCount = forwardCount,
            CallChain = chain,
        };
        if (body.Length > 0)
        {
            byte[] copy = ArrayPool<byte>.Shared.Rent(body.Length);
            body.CopyTo(copy);
            message.Body = copy;
            message.BodyLength = body.Length;
        }

        return message;
    }
}
