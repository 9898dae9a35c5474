using Microsoft.Extensions.Options;

namespace OrleansLsn.AspNetCore;

/// <summary>What web responses say about their read decision: the <c>OrleansLsn:Reads</c> section, beside <see cref="OrleansLsn.Client.ReadRoutingOptions"/>.</summary>
public sealed class ReadDecisionOptions
{
    /// <summary>Add <see cref="DebugHeaderName"/> to every decided response: where the read went and why. Default off (it tells a client about the database's lag).</summary>
    public bool DebugHeader { get; set; }

    /// <summary>The debug header's name.</summary>
    public string DebugHeaderName { get; set; } = "X-OrleansLsn-Read";

    /// <summary>The header a response read from a replica without the user's write carries (<c>OnTimeout = Stale</c>); always set then.</summary>
    public string StaleHeaderName { get; set; } = "X-OrleansLsn-Stale";

    /// <summary>The <c>Retry-After</c> of a 503 (<c>OnTimeout = Unavailable</c>), rounded up to whole seconds. Default 1 s.</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(1);
}

internal sealed class ReadDecisionOptionsValidator : IValidateOptions<ReadDecisionOptions>
{
    public ValidateOptionsResult Validate(string? name, ReadDecisionOptions options)
    {
        var problems = new List<string>();
        foreach ((string key, string value) in new[] { ("DebugHeaderName", options.DebugHeaderName), ("StaleHeaderName", options.StaleHeaderName) })
        {
            if (!CausalTokenOptionsValidator.IsToken(value))
            {
                problems.Add($"OrleansLsn:Reads:{key} '{value}' is not a header name (visible ASCII, no separators).");
            }
        }

        if (options.RetryAfter <= TimeSpan.Zero || options.RetryAfter > TimeSpan.FromHours(1))
        {
            problems.Add($"OrleansLsn:Reads:RetryAfter must be positive and at most 1 h (was {options.RetryAfter}).");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
