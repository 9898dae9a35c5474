namespace OrleansLsn.Client;

/// <summary>
/// The causal token of the work under way, in Orleans' <see cref="RequestContext"/>: set for a web request by
/// OrleansLsn.AspNetCore (<c>UseCausalTokens</c>), it travels with every grain call made while handling the request, so
/// a grain reads it as <see cref="Current"/>; <see cref="Use"/> sets it for other work (a message from a queue, a job).
/// </summary>
public static class CausalTokenContext
{
    /// <summary>The <see cref="RequestContext"/> key, holding <see cref="CausalToken.Format"/>.</summary>
    public const string RequestContextKey = "orleanslsn.causal-token";

    /// <summary>The token in the current <see cref="RequestContext"/>, or <c>null</c>.</summary>
    public static CausalToken? Current =>
        RequestContext.Get(RequestContextKey) is string text && CausalToken.TryParse(text, out CausalToken token) ? token : null;

    /// <summary>
    /// Sets <paramref name="token"/> (or removes it, for <c>null</c>) in the current <see cref="RequestContext"/> until the
    /// returned scope is disposed, when what was there before is back.
    /// </summary>
    public static IDisposable Use(CausalToken? token)
    {
        object? previous = RequestContext.Get(RequestContextKey);
        Set(token?.Format());
        return new Scope(previous as string);
    }

    private static void Set(string? value)
    {
        if (value is null)
        {
            RequestContext.Remove(RequestContextKey);
        }
        else
        {
            RequestContext.Set(RequestContextKey, value);
        }
    }

    private sealed class Scope(string? previous) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                Set(previous);
            }
        }
    }
}
