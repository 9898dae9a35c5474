using Microsoft.AspNetCore.Builder;
using OrleansLsn.Client;

namespace OrleansLsn.AspNetCore;

/// <summary>
/// An endpoint's read bound: how long its reads may wait for the region's replica to replay the user's last write, and
/// where they go when that is not enough. Endpoints without it use <c>OrleansLsn:Reads:MaxWait</c> and <c>OnTimeout</c>.
/// </summary>
/// <example><code>[ReadYourWrites(MaxWaitMilliseconds = 250, OnTimeout = ReadTimeoutAction.Stale)] public IActionResult Feed() ...</code></example>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = false, Inherited = true)]
public sealed class ReadYourWritesAttribute : Attribute
{
    private int? _maxWait;
    private ReadTimeoutAction? _onTimeout;

    /// <summary>The endpoint's longest wait, 0 to 60 000 ms; unset for the configured one.</summary>
    public int MaxWaitMilliseconds
    {
        get => _maxWait ?? -1;
        set => _maxWait = value is >= 0 and <= 60_000 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "A read's wait is 0 to 60 000 ms.");
    }

    /// <summary>Where the endpoint's reads go when the wait ends without the write; unset for the configured action.</summary>
    public ReadTimeoutAction OnTimeout
    {
        get => _onTimeout ?? ReadTimeoutAction.Primary;
        set => _onTimeout = Enum.IsDefined(value) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Primary, Stale or Unavailable.");
    }

    internal ReadBound Resolve(ReadBound defaults) =>
        new(_maxWait is { } ms ? TimeSpan.FromMilliseconds(ms) : defaults.MaxWait, _onTimeout ?? defaults.OnTimeout);
}

/// <summary>
/// An endpoint whose request makes no read decision (it only writes, or reads only the primary): no wait, no header;
/// injecting the read decision there throws. For endpoints that write and then redirect.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, AllowMultiple = false, Inherited = true)]
public sealed class NoReadDecisionAttribute : Attribute;

/// <summary>The read bound of minimal API endpoints and route groups.</summary>
public static class ReadYourWritesEndpointExtensions
{
    /// <summary>Sets the endpoints' read bound (see <see cref="ReadYourWritesAttribute"/>); an argument left <c>null</c> keeps the configured value.</summary>
    public static TBuilder WithReadYourWrites<TBuilder>(this TBuilder builder, TimeSpan? maxWait = null, ReadTimeoutAction? onTimeout = null)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var attribute = new ReadYourWritesAttribute();
        if (maxWait is { } wait)
        {
            attribute.MaxWaitMilliseconds = wait >= TimeSpan.Zero && wait <= ReplayView.MaxWaitTimeout
                ? (int)Math.Ceiling(wait.TotalMilliseconds)
                : throw new ArgumentOutOfRangeException(nameof(maxWait), wait, "A read's wait is 0 to 60 s.");
        }

        if (onTimeout is { } action)
        {
            attribute.OnTimeout = action;
        }

        return builder.WithMetadata(attribute);
    }

    /// <summary>Makes no read decision for the endpoints (see <see cref="NoReadDecisionAttribute"/>).</summary>
    public static TBuilder WithoutReadDecision<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.WithMetadata(new NoReadDecisionAttribute());
    }
}
