using System.Text.Json;

namespace OrleansLsn.Runtime.Serialization;

internal sealed class EnumCodec<TEnum>() : ValueCodec(typeof(TEnum))
    where TEnum : struct, Enum
{
    private static readonly bool IsFlags = typeof(TEnum).IsDefined(typeof(FlagsAttribute), inherit: false);

    public override void Write(FrameBuffer writer, object? value, IReferenceContext context) =>
        writer.WriteVarInt64(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));

    public override object? Read(ref SpanReader reader, IReferenceContext context)
    {
        long raw = reader.ReadVarInt64();
        object value = Enum.ToObject(typeof(TEnum), raw);
        if (!IsFlags && !Enum.IsDefined(typeof(TEnum), value))
        {
            throw new GrainSerializationException($"{raw} is not a value of {typeof(TEnum).Name}.");
        }

        return value;
    }
}

internal sealed class NullableCodec<T>(ValueCodec inner) : ValueCodec(typeof(T?))
    where T : struct
{
    public override void Write(FrameBuffer writer, object? value, IReferenceContext context)
    {
        if (value is null)
        {
            writer.WriteByte(0);
            return;
        }

        writer.WriteByte(1);
        inner.Write(writer, value, context);
    }

    public override object? Read(ref SpanReader reader, IReferenceContext context) => reader.ReadByte() switch
    {
        0 => null,
        1 => inner.Read(ref reader, context),
        byte b => throw new GrainSerializationException($"Invalid presence byte {b}."),
    };
}

/// <summary>Arrays, and list interfaces (read back as <see cref="List{T}"/>).</summary>
internal sealed class ListCodec<T>(Type declared, ValueCodec element, bool asArray) : ValueCodec(declared)
{
    public override void Write(FrameBuffer writer, object? value, IReferenceContext context)
    {
        if (value is null)
        {
            writer.WriteByte(0);
            return;
        }

        var items = (IReadOnlyCollection<T>)value;
        writer.WriteVarUInt64((ulong)items.Count + 1);
        foreach (T item in items)
        {
            element.Write(writer, item, context);
        }
    }

    public override object? Read(ref SpanReader reader, IReferenceContext context)
    {
        ulong prefix = reader.ReadVarUInt64();
        if (prefix == 0)
        {
            return null;
        }

        // Every element takes at least one byte, so the count is bounded by what is left.
        if (prefix - 1 > (ulong)reader.Remaining)
        {
            throw new GrainSerializationException($"A list of {prefix - 1} items exceeds the {reader.Remaining} bytes left.");
        }

        int count = (int)(prefix - 1);
        if (asArray)
        {
            var array = new T[count];
            for (int i = 0; i < count; i++)
            {
                array[i] = (T)element.Read(ref reader, context)!;
            }

            return array;
        }

        var list = new List<T>(count);
        for (int i = 0; i < count; i++)
        {
            list.Add((T)element.Read(ref reader, context)!);
        }

        return list;
    }
}

internal sealed class DictionaryCodec<TKey, TValue>(Type declared, ValueCodec key, ValueCodec value) : ValueCodec(declared)
    where TKey : notnull
{
    public override void Write(FrameBuffer writer, object? instance, IReferenceContext context)
    {
        if (instance is null)
        {
            writer.WriteByte(0);
            return;
        }

        var items = (IReadOnlyCollection<KeyValuePair<TKey, TValue>>)instance;
        writer.WriteVarUInt64((ulong)items.Count + 1);
        foreach (KeyValuePair<TKey, TValue> pair in items)
        {
            key.Write(writer, pair.Key, context);
            value.Write(writer, pair.Value, context);
        }
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
            throw new GrainSerializationException($"A dictionary of {prefix - 1} entries exceeds the {reader.Remaining} bytes left.");
        }

        int count = (int)(prefix - 1);
        var result = new Dictionary<TKey, TValue>(count);
        for (int i = 0; i < count; i++)
        {
            var k = (TKey)(key.Read(ref reader, context) ?? throw new GrainSerializationException("A dictionary key is null."));
            if (!result.TryAdd(k, (TValue)value.Read(ref reader, context)!))
            {
                throw new GrainSerializationException("A dictionary key appears twice.");
            }
        }

        return result;
    }
}

/// <summary>Grain and observer references: only the address travels.</summary>
internal sealed class ReferenceCodec(Type interfaceType) : ValueCodec(interfaceType)
{
    public override void Write(FrameBuffer writer, object? value, IReferenceContext context)
    {
        if (value is null)
        {
            writer.WriteByte(0);
            return;
        }

        ReferenceAddress address = context.GetAddress(value, Type);
        writer.WriteByte((byte)address.Kind);
        writer.WriteUInt32(address.InterfaceId);
        if (address.Kind == ReferenceKind.Grain)
        {
            writer.WriteString(address.Key);
        }
        else
        {
            writer.WriteGuid(address.ClientId);
            writer.WriteGuid(address.ObserverId);
        }
    }

    public override object? Read(ref SpanReader reader, IReferenceContext context)
    {
        byte kind = reader.ReadByte();
        ReferenceAddress address;
        switch (kind)
        {
            case 0:
                return null;
            case (byte)ReferenceKind.Grain:
                address = ReferenceAddress.ForGrain(reader.ReadUInt32(), reader.ReadRequiredString());
                break;
            case (byte)ReferenceKind.Observer:
                uint interfaceId = reader.ReadUInt32();
                address = ReferenceAddress.ForObserver(interfaceId, reader.ReadGuid(), reader.ReadGuid());
                break;
            default:
                throw new GrainSerializationException($"Invalid reference kind {kind}.");
        }

        return context.CreateReference(Type, address);
    }
}

/// <summary>
/// Contract types marked <see cref="GenerateSerializerAttribute"/>: encoded with System.Text.Json as the declared type
/// (no polymorphism, no type names), after the registry has checked every member type against the allowlist.
/// </summary>
internal sealed class ContractTypeCodec(Type type, JsonSerializerOptions options) : ValueCodec(type)
{
    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public override void Write(FrameBuffer writer, object? value, IReferenceContext context)
    {
        if (value is null)
        {
            writer.WriteByte(0);
            return;
        }

        writer.WriteByte(1);
        int at = writer.Reserve4();
        int start = writer.Length;
        Utf8JsonWriter json = t_writer ??= new Utf8JsonWriter(writer, new JsonWriterOptions { SkipValidation = true });
        json.Reset(writer);
        try
        {
            JsonSerializer.Serialize(json, value, Type, options);
            json.Flush();
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException)
        {
            throw new GrainSerializationException($"Cannot serialize {Type.Name}: {e.Message}", e);
        }
        finally
        {
            json.Reset(Stream.Null);
        }

        writer.PatchInt32(at, writer.Length - start);
    }

    public override object? Read(ref SpanReader reader, IReferenceContext context)
    {
        switch (reader.ReadByte())
        {
            case 0:
                return null;
            case 1:
                break;
            case byte b:
                throw new GrainSerializationException($"Invalid presence byte {b}.");
        }

        int length = reader.ReadInt32();
        if (length <= 0 || length > reader.Remaining)
        {
            throw new GrainSerializationException($"A {Type.Name} value is truncated.");
        }

        ReadOnlySpan<byte> utf8 = reader.ReadBytes(length);
        try
        {
            return JsonSerializer.Deserialize(utf8, Type, options)
                ?? throw new GrainSerializationException($"A {Type.Name} value is null.");
        }
        catch (JsonException e)
        {
            throw new GrainSerializationException($"Invalid {Type.Name} value: {e.Message}", e);
        }
    }
}
