namespace OrleansLsn.Runtime.Serialization;

/// <summary>Writes and reads values of one declared type. Codecs are built once per type, at registration.</summary>
internal abstract class ValueCodec
{
    protected ValueCodec(Type type)
    {
        Type = type;
    }

    public Type Type { get; }

    public abstract void Write(FrameBuffer writer, object? value, IReferenceContext context);

    public abstract object? Read(ref SpanReader reader, IReferenceContext context);
}

/// <summary>Turns grain and observer references into addresses and back; supplied by the client or the silo.</summary>
internal interface IReferenceContext
{
    /// <summary>The address of a reference made by this runtime, or an exception saying what to pass instead.</summary>
    ReferenceAddress GetAddress(object reference, Type declaredType);

    /// <summary>A proxy of <paramref name="interfaceType"/> bound to <paramref name="address"/>.</summary>
    object CreateReference(Type interfaceType, ReferenceAddress address);
}
