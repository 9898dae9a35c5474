using Microsoft.Extensions.Options;

namespace OrleansLsn.AspNetCore;

/// <summary>Where the causal token travels: <c>OrleansLsn:CausalToken</c> in configuration, or <c>AddCausalTokens(o =&gt; ...)</c>.</summary>
public sealed class CausalTokenOptions
{
    /// <summary>The cookie browsers carry the token in (HTTP-only, <c>SameSite=Lax</c>, secure on HTTPS requests).</summary>
    public string CookieName { get; set; } = "orleanslsn-rw";

    /// <summary>The header API clients send the token in, and that responses which wrote carry it back in.</summary>
    public string HeaderName { get; set; } = "X-OrleansLsn-Token";

    /// <summary>How long the cookie lives after the user's last write.</summary>
    public TimeSpan CookieLifetime { get; set; } = TimeSpan.FromDays(1);
}

internal sealed class CausalTokenOptionsValidator : IValidateOptions<CausalTokenOptions>
{
    public ValidateOptionsResult Validate(string? name, CausalTokenOptions options)
    {
        var problems = new List<string>();
        if (!IsToken(options.CookieName))
        {
            problems.Add($"CausalToken:CookieName '{options.CookieName}' is not a cookie name (visible ASCII, no separators).");
        }

        if (!IsToken(options.HeaderName))
        {
            problems.Add($"CausalToken:HeaderName '{options.HeaderName}' is not a header name (visible ASCII, no separators).");
        }

        if (options.CookieLifetime <= TimeSpan.Zero)
        {
            problems.Add($"CausalToken:CookieLifetime must be positive (was {options.CookieLifetime}).");
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    /// <summary>Whether <paramref name="value"/> is an HTTP token (a cookie or header name): visible ASCII, no separators.</summary>
    internal static bool IsToken(string? value) =>
        !string.IsNullOrWhiteSpace(value) && !value.Any(c => c <= ' ' || c >= 127 || "()<>@,;:\\\"/[]?={}".Contains(c));
}
