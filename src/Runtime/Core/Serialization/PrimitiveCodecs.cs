using System.Collections.Frozen;

namespace OrleansLsn.Runtime.Serialization;

/// <summary>Codecs for the built-in value types and strings.</summary>
internal static class PrimitiveCodecs
{
    public static readonly FrozenDictionary<Type, ValueCodec> All = new ValueCodec[]
    {
        new Simple<bool>((w, v) => w.WriteByte(v ? (byte)1 : (byte)0), (ref SpanReader r) => r.ReadByte() switch
        {
            0 => false,
            1 => true,
            byte b => throw new GrainSerializationException($"Invalid boolean byte {b}."),
        }),
        new Simple<byte>((w, v) => w.WriteByte(v), (ref SpanReader r) => r.ReadByte()),
        new Simple<sbyte>((w, v) => w.WriteByte((byte)v), (ref SpanReader r) => (sbyte)r.ReadByte()),
        new Simple<short>((w, v) => w.WriteVarInt64(v), (ref SpanReader r) => checked((short)r.ReadVarInt64())),
        new Simple<ushort>((w, v) => w.WriteVarUInt64(v), (ref SpanReader r) => checked((ushort)r.ReadVarUInt64())),
        new Simple<int>((w, v) => w.WriteVarInt64(v), (ref SpanReader r) => checked((int)r.ReadVarInt64())),
        new Simple<uint>((w, v) => w.WriteVarUInt64(v), (ref SpanReader r) => checked((uint)r.ReadVarUInt64())),
        new Simple<long>((w, v) => w.WriteVarInt64(v), (ref SpanReader r) => r.ReadVarInt64()),
        new Simple<ulong>((w, v) => w.WriteVarUInt64(v), (ref SpanReader r) => r.ReadVarUInt64()),
        new Simple<char>((w, v) => w.WriteVarUInt64(v), (ref SpanReader r) => checked((char)r.ReadVarUInt64())),
        new Simple<float>((w, v) => w.WriteUInt32(BitConverter.SingleToUInt32Bits(v)), (ref SpanReader r) => BitConverter.UInt32BitsToSingle(r.ReadUInt32())),
        new Simple<double>((w, v) => w.WriteVarUInt64(BitConverter.DoubleToUInt64Bits(v)), (ref SpanReader r) => BitConverter.UInt64BitsToDouble(r.ReadVarUInt64())),
        new Simple<decimal>(WriteDecimal, ReadDecimal),
        new Simple<Guid>((w, v) => w.WriteGuid(v), (ref SpanReader r) => r.ReadGuid()),
        new Simple<TimeSpan>((w, v) => w.WriteVarInt64(v.Ticks), (ref SpanReader r) => new TimeSpan(r.ReadVarInt64())),
        new Simple<DateTime>((w, v) => w.WriteVarInt64(v.ToBinary()), ReadDateTime),
        new Simple<DateTimeOffset>(WriteDateTimeOffset, ReadDateTimeOffset),
        new StringCodec(),
        new BytesCodec(),
    }.ToFrozenDictionary(c => c.Type);

    private static void WriteDecimal(FrameBuffer w, decimal v)
    {
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(v, bits);
        foreach (int b in bits)
        {
            w.WriteUInt32((uint)b);
        }
    }

    private static decimal ReadDecimal(ref SpanReader r)
    {
        Span<int> bits = [r.ReadInt32(), r.ReadInt32(), r.ReadInt32(), r.ReadInt32()];
        try
        {
            return new decimal(bits);
        }
        catch (ArgumentException e)
        {
            throw new GrainSerializationException("Invalid decimal.", e);
        }
    }

    private static DateTime ReadDateTime(ref SpanReader r)
    {
        try
        {
            return DateTime.FromBinary(r.ReadVarInt64());
        }
        catch (ArgumentException e)
        {
            throw new GrainSerializationException("Invalid DateTime.", e);
        }
    }

    private static void WriteDateTimeOffset(FrameBuffer w, DateTimeOffset v)
    {
        w.WriteVarInt64(v.Ticks);
        w.WriteVarInt64(v.Offset.Ticks);
    }

    private static DateTimeOffset ReadDateTimeOffset(ref SpanReader r)
    {
        long ticks = r.ReadVarInt64();
        long offset = r.ReadVarInt64();
        try
        {
            return new DateTimeOffset(ticks, new TimeSpan(offset));
        }
        catch (ArgumentException e)
        {
            throw new GrainSerializationException("Invalid DateTimeOffset.", e);
        }
    }

    internal delegate T ReadFunc<out T>(ref SpanReader reader);

    private sealed class Simple<T>(Action<FrameBuffer, T> write, ReadFunc<T> read) : ValueCodec(typeof(T))
        where T : struct
    {
        public override void Write(FrameBuffer writer, object? value, IReferenceContext context) =>
            write(writer, value is T t ? t : throw new GrainSerializationException($"Expected a {typeof(T).Name}, got {value?.GetType().Name ?? "null"}."));

        public override object? Read(ref SpanReader reader, IReferenceContext context) => read(ref reader);
    }

    private sealed class StringCodec() : ValueCodec(typeof(string))
    {
        public override void Write(FrameBuffer writer, object? value, IReferenceContext context) => writer.WriteString((string?)value);

        public override object? Read(ref SpanReader reader, IReferenceContext context) => reader.ReadString();
    }

    private sealed class BytesCodec() : ValueCodec(typeof(byte[]))
    {
        public override void Write(FrameBuffer writer, object? value, IReferenceContext context)
        {
            if (value is not byte[] bytes)
            {
                writer.WriteByte(0);
                return;
            }

            writer.WriteVarUInt64((ulong)bytes.Length + 1);
            writer.WriteBytes(bytes);
        }

        public override object? Read(ref SpanReader reader, IReferenceContext context)
        {
            ulong prefix = reader.ReadVarUInt64();
            if (prefix == 0)
            {
                return null;
            }

            if (prefix - 1 > (ulong)reader.Remaining)
            {
                throw new GrainSerializationException("A byte array is truncated.");
            }

            return reader.ReadBytes((int)(prefix - 1)).ToArray();
        }
    }
}
