using OrleansLsn.Runtime.Messaging;
using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>The callee's side of a call: reads the arguments, runs the method, and builds the response frame.</summary>
internal static class RequestInvoker
{
    /// <summary>Deserializes the arguments; the cancellation token goes where the method declares one.</summary>
    public static object?[] ReadArguments(MethodDescriptor method, RequestMessage request, IReferenceContext context, CancellationToken cancellationToken)
    {
        ValueCodec?[] codecs = method.ParameterCodecs;
        object?[] args = codecs.Length == 0 ? [] : new object?[codecs.Length];
        var reader = new SpanReader(request.BodySpan);
        for (int i = 0; i < codecs.Length; i++)
        {
            args[i] = codecs[i] is { } codec ? codec.Read(ref reader, context) : cancellationToken;
        }

        if (reader.Remaining != 0)
        {
            throw new GrainSerializationException($"{reader.Remaining} bytes are left after the arguments of {method.DisplayName}.");
        }

        return args;
    }

    /// <summary>Starts the method; a synchronous throw becomes a faulted task.</summary>
    public static Task Start(object target, MethodDescriptor method, object?[] args)
    {
        try
        {
            return method.Invoke(target, args) ?? Task.FromException(new InvalidOperationException($"{method.DisplayName} returned a null task."));
        }
#pragma warning disable CA1031 // The exception is the call's result.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return Task.FromException(e);
        }
    }

    /// <summary>The response to a completed method task.</summary>
    public static FrameBuffer BuildResponse(long requestId, MethodDescriptor method, Task completed, IReferenceContext context)
    {
        if (completed.IsFaulted)
        {
            Exception error = completed.Exception!.InnerExceptions.Count == 1 ? completed.Exception.InnerException! : completed.Exception;
            return ResponseFrames.Exception(requestId, error);
        }

        if (completed.IsCanceled)
        {
            return ResponseFrames.Error(requestId, ResponseStatus.Canceled);
        }

        FrameBuffer frame = ResponseFrames.Start(requestId, ResponseStatus.Ok);
        if (method.ResultCodec is { } codec)
        {
            try
            {
                codec.Write(frame, method.GetResult(completed), context);
            }
            catch (Exception e) when (e is GrainSerializationException or InvalidCastException)
            {
                frame.Dispose();
                return ResponseFrames.Exception(requestId, new GrainSerializationException($"Cannot serialize the result of {method.DisplayName}: {e.Message}", e));
            }
        }

        frame.Complete();
        return frame;
    }
}
