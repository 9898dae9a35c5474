using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>
/// A call waiting for its response. Exactly one of response, exception, timeout or cancellation completes it; the
/// first wins and the others are ignored.
/// </summary>
internal abstract class PendingCall
{
    public long Id { get; set; }

    public MethodDescriptor Method { get; set; } = null!;

    /// <summary>When the call times out, as a <see cref="System.Diagnostics.Stopwatch"/> timestamp.</summary>
    public long Deadline { get; set; }

    public TimeSpan Timeout { get; set; }

    /// <summary>Where the request went (a connection, or the local silo); used to fail calls when it closes.</summary>
    public object? Channel { get; set; }

    public string Target { get; set; } = string.Empty;

    public long StartedAt { get; set; }

    public CancellationTokenRegistration Registration { get; set; }

    public abstract Task Task { get; }

    /// <summary>The value the proxy returns: the task, or a value task over it.</summary>
    public abstract object ReturnValue { get; }

    public abstract bool TrySetException(Exception exception);

    public abstract bool TrySetCanceled(CancellationToken cancellationToken);

    /// <summary>Deserializes the result and completes the call; a malformed result fails the call instead.</summary>
    public abstract bool TrySetResult(ref SpanReader reader, IReferenceContext context);
}

internal sealed class PendingCall<T>(ReturnKind kind) : PendingCall
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override Task Task => _completion.Task;

    public override object ReturnValue => kind switch
    {
        ReturnKind.Task or ReturnKind.TaskOfT => _completion.Task,
        ReturnKind.ValueTask => new ValueTask(_completion.Task),
        _ => new ValueTask<T>(_completion.Task),
    };

    public override bool TrySetException(Exception exception) => _completion.TrySetException(exception);

    public override bool TrySetCanceled(CancellationToken cancellationToken) => _completion.TrySetCanceled(cancellationToken);

    public override bool TrySetResult(ref SpanReader reader, IReferenceContext context)
    {
        if (kind is ReturnKind.Task or ReturnKind.ValueTask)
        {
            return _completion.TrySetResult(default!);
        }

        object? value;
        try
        {
            value = Method.ResultCodec!.Read(ref reader, context);
        }
        catch (GrainSerializationException e)
        {
            return _completion.TrySetException(e);
        }

        return _completion.TrySetResult((T)value!);
    }
}
