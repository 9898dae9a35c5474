using System.Buffers;
using System.Buffers.Binary;

namespace OrleansLsn.Bench.Runtime;

/// <summary>The raw anchors' framing: a 4-byte little-endian length, then that many payload bytes.</summary>
internal static class EchoFrames
{
    public const int PrefixSize = 4;
    public const int MaxPayload = 16 * 1024 * 1024;

    /// <summary>Splits one whole frame (prefix included) off the front of <paramref name="buffer"/>, if it holds one.</summary>
    /// <exception cref="InvalidDataException">The length prefix is negative or too large.</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < PrefixSize)
        {
            return false;
        }

        Span<byte> prefix = stackalloc byte[PrefixSize];
        buffer.Slice(0, PrefixSize).CopyTo(prefix);
        int length = BinaryPrimitives.ReadInt32LittleEndian(prefix);
        if (length is < 0 or > MaxPayload)
        {
            throw new InvalidDataException($"Invalid echo frame length {length}.");
        }

        if (buffer.Length < PrefixSize + length)
        {
            return false;
        }

        frame = buffer.Slice(0, PrefixSize + length);
        buffer = buffer.Slice(frame.End);
        return true;
    }

    /// <summary>Writes one frame holding <paramref name="payload"/>.</summary>
    public static void Write(IBufferWriter<byte> writer, ReadOnlySpan<byte> payload)
    {
        Span<byte> span = writer.GetSpan(PrefixSize + payload.Length);
        BinaryPrimitives.WriteInt32LittleEndian(span, payload.Length);
        payload.CopyTo(span[PrefixSize..]);
        writer.Advance(PrefixSize + payload.Length);
    }
}
