using Microsoft.AspNetCore.Http;
using OrleansLsn.Client;

namespace OrleansLsn.AspNetCore;

/// <summary>The request's causal token, as <see cref="CausalTokenHttpContextExtensions.GetCausalToken"/> returns it.</summary>
public sealed class CausalTokenFeature
{
    /// <summary>The token the request carried and that verified, else <c>null</c>.</summary>
    public CausalToken? Incoming { get; internal set; }

    /// <summary>Why a token the request carried was ignored (the request is then treated as carrying none), else <c>null</c>.</summary>
    public string? Rejected { get; internal set; }

    /// <summary>The token the response carries back (set when the response starts, if the request wrote), else <c>null</c>.</summary>
    public CausalToken? Outgoing { get; internal set; }

    /// <summary>What the response carries instead of a refused token (with the request's writes merged in), else <c>null</c>.</summary>
    internal CausalToken? Replacement { get; private set; }

    /// <summary>Whether the request's token was dropped: the response then replaces it, or clears the cookie if the token came in it.</summary>
    internal bool Dropped { get; private set; }

    /// <summary>Whether the request's token came in the cookie (not the header).</summary>
    internal bool FromCookie { get; set; }

    /// <summary>Drops the verified token the read decision refused (another database, another timeline, past the primary).</summary>
    internal void Refuse(string why, CausalToken? replacement)
    {
        Incoming = null;
        Rejected = why;
        Replacement = replacement;
        Dropped = true;
    }
}

/// <summary>The request's causal token.</summary>
public static class CausalTokenHttpContextExtensions
{
    /// <summary>The request's causal token; <c>null</c> when <c>UseCausalTokens</c> did not run for this request.</summary>
    public static CausalTokenFeature? GetCausalToken(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Features.Get<CausalTokenFeature>();
    }

    /// <summary>Where the request's reads go and why; <c>null</c> when no decision was made (no <c>UseReadYourWrites</c>, or an endpoint <c>WithoutReadDecision</c>).</summary>
    public static ReadDecision? GetReadDecision(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Features.Get<ReadDecision>();
    }
}
