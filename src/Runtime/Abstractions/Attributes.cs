namespace OrleansLsn.Runtime;

/// <summary>
/// The caller does not wait for the method to run: the call completes once the message is queued for sending, and
/// failures in the grain are not reported (Orleans: <c>[OneWay]</c>). The method must return <see cref="Task"/> or
/// <see cref="ValueTask"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class OneWayAttribute : Attribute
{
}

/// <summary>
/// Requests to this grain class may interleave at awaits: a new request starts while another one is waiting
/// (Orleans: <c>[Reentrant]</c>). Turns still never run in parallel.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class ReentrantAttribute : Attribute
{
}

/// <summary>This interface method may interleave with any other request of the grain (Orleans: <c>[AlwaysInterleave]</c>).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AlwaysInterleaveAttribute : Attribute
{
}

/// <summary>Overrides the default response timeout (30 s) for one interface method (Orleans: <c>[ResponseTimeout]</c>).</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ResponseTimeoutAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="timeout">A <see cref="TimeSpan"/> in invariant "c" format, for example <c>"00:00:05"</c>.</param>
    public ResponseTimeoutAttribute(string timeout)
    {
        Timeout = TimeSpan.Parse(timeout, System.Globalization.CultureInfo.InvariantCulture);
        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "A response timeout must be positive.");
        }
    }

    /// <summary>The timeout.</summary>
    public TimeSpan Timeout { get; }
}

/// <summary>Activations of this grain class are never deactivated for being idle (Orleans: <c>[KeepAlive]</c>).</summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class KeepAliveAttribute : Attribute
{
}

/// <summary>
/// Declares a type as part of the contract, so the serializer accepts it (Orleans: <c>[GenerateSerializer]</c>). Types
/// without this attribute (other than primitives, enums, nullable values, arrays and lists of accepted types, and grain
/// or observer references) are refused when the interface that uses them is registered.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Enum, Inherited = false)]
public sealed class GenerateSerializerAttribute : Attribute
{
}

/// <summary>A stable member id for serialization (Orleans: <c>[Id]</c>). Kept for source compatibility with Orleans.</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property | AttributeTargets.Parameter)]
public sealed class IdAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    public IdAttribute(uint id)
    {
        Id = id;
    }

    /// <summary>The id.</summary>
    public uint Id { get; }
}

/// <summary>
/// A stable wire name for a grain interface or a method, so that renaming the .NET type does not break callers
/// (Orleans: <c>[Alias]</c>). Without it, the interface's full name and the method's name are used.
/// </summary>
[AttributeUsage(AttributeTargets.Interface | AttributeTargets.Method)]
public sealed class AliasAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    public AliasAttribute(string alias)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(alias);
        Alias = alias;
    }

    /// <summary>The alias.</summary>
    public string Alias { get; }
}
