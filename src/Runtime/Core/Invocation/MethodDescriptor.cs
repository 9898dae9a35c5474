using System.Reflection;
using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>
/// One interface method: wire id, codecs, call attributes, and delegates built once so that calls do no reflection:
/// the callee side invokes through <see cref="Invoke"/>, the caller side makes its typed result through
/// <see cref="CreatePendingCall"/>.
/// </summary>
internal sealed class MethodDescriptor
{
    public required InterfaceDescriptor Interface { get; init; }

    public required MethodInfo Method { get; init; }

    public required string Name { get; init; }

    public required uint Id { get; init; }

    /// <summary>One codec per parameter; <see langword="null"/> at the cancellation token's position.</summary>
    public required ValueCodec?[] ParameterCodecs { get; init; }

    /// <summary>The index of the <see cref="CancellationToken"/> parameter, or -1.</summary>
    public required int CancellationTokenIndex { get; init; }

    public required ReturnKind ReturnKind { get; init; }

    /// <summary>The codec of the result for <see cref="ReturnKind.TaskOfT"/> and <see cref="ReturnKind.ValueTaskOfT"/>.</summary>
    public required ValueCodec? ResultCodec { get; init; }

    public required bool IsOneWay { get; init; }

    public required bool AlwaysInterleave { get; init; }

    /// <summary>The <see cref="ResponseTimeoutAttribute"/> value, if any.</summary>
    public required TimeSpan? ResponseTimeout { get; init; }

    /// <summary>Calls the method on a target; returns the method's task (value tasks converted).</summary>
    public required Func<object, object?[], Task> Invoke { get; init; }

    /// <summary>Reads the result of a completed task returned by <see cref="Invoke"/>.</summary>
    public required Func<Task, object?> GetResult { get; init; }

    /// <summary>Makes the caller-side pending call whose task has the method's result type.</summary>
    public required Func<PendingCall> CreatePendingCall { get; init; }

    /// <summary>Turns a task into the method's declared return type (for one-way and failed calls).</summary>
    public required Func<Task, object> FromTask { get; init; }

    public string DisplayName => $"{Interface.Type.Name}.{Name}";

    public override string ToString() => DisplayName;
}
