using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace OrleansLsn.Runtime.Serialization;

/// <summary>
/// A growable buffer rented from <see cref="ArrayPool{T}"/> that one frame is written into. The first four bytes are
/// the frame's length, filled in by <see cref="Complete"/>. Owned by one writer at a time; disposing returns the array.
/// </summary>
internal sealed class FrameBuffer : IBufferWriter<byte>, IDisposable
{
    private byte[] _array;
    private int _length;

    public FrameBuffer(int initialSize = 256)
    {
        _array = ArrayPool<byte>.Shared.Rent(Math.Max(initialSize, 16));
        _length = FrameFormat.LengthPrefixSize;
    }

    public int Length => _length;

    public ReadOnlySpan<byte> WrittenSpan => _array.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _array.AsMemory(0, _length);

    public void Advance(int count)
    {
        Debug.Assert(count >= 0 && _length + count <= _array.Length);
        _length += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsMemory(_length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _array.AsSpan(_length);
    }

    /// <summary>Writes the frame length (everything after the prefix) and returns the total size.</summary>
    public int Complete()
    {
        BinaryPrimitives.WriteInt32LittleEndian(_array, _length - FrameFormat.LengthPrefixSize);
        return _length;
    }

    public void WriteByte(byte value)
    {
        Ensure(1);
        _array[_length++] = value;
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        Ensure(value.Length);
        value.CopyTo(_array.AsSpan(_length));
        _length += value.Length;
    }

    public void WriteUInt32(uint value)
    {
        Ensure(4);
        BinaryPrimitives.WriteUInt32LittleEndian(_array.AsSpan(_length), value);
        _length += 4;
    }

    /// <summary>Reserves four bytes for a length written later with <see cref="PatchInt32"/>.</summary>
    public int Reserve4()
    {
        Ensure(4);
        int at = _length;
        _length += 4;
        return at;
    }

    public void PatchInt32(int at, int value) => BinaryPrimitives.WriteInt32LittleEndian(_array.AsSpan(at), value);

    public void WriteVarUInt64(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            _array[_length++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _array[_length++] = (byte)value;
    }

    public void WriteVarInt64(long value) => WriteVarUInt64((ulong)((value << 1) ^ (value >> 63)));

    public void WriteGuid(Guid value)
    {
        Ensure(16);
        bool ok = value.TryWriteBytes(_array.AsSpan(_length));
        Debug.Assert(ok);
        _length += 16;
    }

    /// <summary>Writes a string as its UTF-8 length + 1 (0 for null) and the bytes.</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteByte(0);
            return;
        }

        int max = Encoding.UTF8.GetMaxByteCount(value.Length);
        Ensure(max + 5);
        if (value.Length < 40)
        {
            // Short strings: write the bytes after a one-byte length slot, which is enough below 127 bytes.
            int count = Encoding.UTF8.GetBytes(value, _array.AsSpan(_length + 1));
            if (count + 1 < 0x80)
            {
                _array[_length] = (byte)(count + 1);
                _length += count + 1;
                return;
            }
        }

        int byteCount = Encoding.UTF8.GetByteCount(value);
        WriteVarUInt64((ulong)byteCount + 1);
        Ensure(byteCount);
        _length += Encoding.UTF8.GetBytes(value, _array.AsSpan(_length));
    }

    public void Dispose()
    {
        byte[] array = _array;
        _array = [];
        _length = 0;
        if (array.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    private void Ensure(int sizeHint)
    {
        if (sizeHint <= 0)
        {
            sizeHint = 1;
        }

        if (_array.Length - _length >= sizeHint)
        {
            return;
        }

        ObjectDisposedException.ThrowIf(_array.Length == 0, this);
        int newSize = Math.Max(_array.Length * 2, _length + sizeHint);
        byte[] next = ArrayPool<byte>.Shared.Rent(newSize);
        _array.AsSpan(0, _length).CopyTo(next);
        ArrayPool<byte>.Shared.Return(_array);
        _array = next;
    }
}
