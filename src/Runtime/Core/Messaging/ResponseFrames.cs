using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Messaging;

/// <summary>Builds response and cancel frames.</summary>
internal static class ResponseFrames
{
    public static FrameBuffer Start(long id, ResponseStatus status)
    {
        var frame = new FrameBuffer(64);
        frame.WriteByte((byte)MessageKind.Response);
        frame.WriteVarUInt64((ulong)id);
        frame.WriteByte((byte)status);
        return frame;
    }

    public static FrameBuffer Error(long id, ResponseStatus status, string? detail = null)
    {
        FrameBuffer frame = Start(id, status);
        frame.WriteString(detail);
        frame.Complete();
        return frame;
    }

    public static FrameBuffer Exception(long id, Exception exception)
    {
        FrameBuffer frame = Start(id, ResponseStatus.Exception);
        ExceptionCodec.Write(frame, exception);
        frame.Complete();
        return frame;
    }

    public static FrameBuffer Cancel(long id)
    {
        var frame = new FrameBuffer(16);
        frame.WriteByte((byte)MessageKind.Cancel);
        frame.WriteVarUInt64((ulong)id);
        frame.Complete();
        return frame;
    }
}
