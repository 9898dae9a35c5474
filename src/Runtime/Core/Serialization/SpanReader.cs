using System.Buffers.Binary;
using System.Text;

namespace OrleansLsn.Runtime.Serialization;

/// <summary>Reads what <see cref="FrameBuffer"/> wrote. Every read is bounds-checked; truncated or malformed data throws <see cref="GrainSerializationException"/>.</summary>
internal ref struct SpanReader
{
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public SpanReader(ReadOnlySpan<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Remaining => _span.Length - _position;

    public readonly int Position => _position;

    public readonly ReadOnlySpan<byte> Rest => _span[_position..];

    public byte ReadByte()
    {
        if (_position >= _span.Length)
        {
            throw Truncated();
        }

        return _span[_position++];
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw Truncated();
        }

        ReadOnlySpan<byte> result = _span.Slice(_position, count);
        _position += count;
        return result;
    }

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));

    public int ReadInt32() => BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4));

    public ulong ReadVarUInt64()
    {
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            byte b = ReadByte();
            if (shift == 63 && b > 1)
            {
                break;
            }

            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw new GrainSerializationException("Malformed variable-length integer.");
    }

    public long ReadVarInt64()
    {
        ulong raw = ReadVarUInt64();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    /// <summary>Reads a non-negative count that cannot exceed the bytes left, so a forged count cannot make us allocate.</summary>
    public int ReadCount()
    {
        ulong count = ReadVarUInt64();
        if (count > (ulong)Remaining)
        {
            throw new GrainSerializationException($"A count of {count} exceeds the {Remaining} bytes left in the message.");
        }

        return (int)count;
    }

    public Guid ReadGuid() => new(ReadBytes(16));

    public string? ReadString()
    {
        ulong prefix = ReadVarUInt64();
        if (prefix == 0)
        {
            return null;
        }

        if (prefix - 1 > (ulong)Remaining)
        {
            throw Truncated();
        }

        ReadOnlySpan<byte> bytes = ReadBytes((int)(prefix - 1));
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new GrainSerializationException("A string is not valid UTF-8.", e);
        }
    }

    public string ReadRequiredString() =>
        ReadString() ?? throw new GrainSerializationException("A required string is null.");

    private readonly GrainSerializationException Truncated() =>
        new($"The message is truncated (at byte {_position} of {_span.Length}).");

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
