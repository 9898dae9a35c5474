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
}
