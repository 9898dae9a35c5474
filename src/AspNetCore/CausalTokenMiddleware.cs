using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLsn.Client;

namespace OrleansLsn.AspNetCore;

/// <summary>
/// Reads the request's causal token (the header first, else the cookie) and, when the response starts, merges the
/// request's writes (its <see cref="LsnWriteRecorder"/>) into it and sets it in the header and the cookie. A token that
/// does not verify is ignored with one warning and the request treated as carrying none; a response whose request
/// wrote nothing sets nothing. Writes committed after the response has started are not in its token. The token the
/// request carried is in <see cref="CausalTokenContext"/> while the request runs.
/// </summary>
internal sealed partial class CausalTokenMiddleware(RequestDelegate next, CausalTokenProtector protector, IOptions<CausalTokenOptions> options, ILogger<CausalTokenMiddleware> logger)
{
    private readonly CausalTokenOptions _options = options.Value;

    public async Task InvokeAsync(HttpContext context)
    {
        var feature = new CausalTokenFeature();
        context.Features.Set(feature);
        (string? text, string source) = context.Request.Headers.TryGetValue(_options.HeaderName, out var header) && header.Count > 0
            ? (header[0], "header")
            : (context.Request.Cookies[_options.CookieName], "cookie");
        feature.FromCookie = source == "cookie";
        if (string.IsNullOrEmpty(text))
        {
            WebMetrics.Tokens.Add(1, new KeyValuePair<string, object?>("outcome", "absent"));
        }
        else
        {
            feature.Incoming = protector.Unprotect(text, out string? problem);
            if (feature.Incoming is null)
            {
                // Dropped: the response clears the cookie it came in (or replaces it, if the request writes), so it is not sent again.
                feature.Refuse($"the {source} {(source == "header" ? _options.HeaderName : _options.CookieName)}: {problem}", replacement: null);
                LogTokenIgnored(logger, feature.Rejected!, context.Request.Path);
            }

            WebMetrics.Tokens.Add(1, new KeyValuePair<string, object?>("outcome", feature.Incoming is null ? "ignored" : "verified"), new KeyValuePair<string, object?>("source", source));
        }

        LsnWriteRecorder? recorder = context.RequestServices.GetService<LsnWriteRecorder>();
        ReadRouter? router = context.RequestServices.GetService<ReadRouter>();
        context.Response.OnStarting(() =>
        {
            CausalToken? basis = feature.Incoming ?? feature.Replacement;
            CausalToken? token = recorder?.LastWrite is { } write ? CausalToken.Merge(basis, CausalToken.From(write)) : feature.Replacement;
            if (recorder?.LastWrite is { } written)
            {
                router?.Observe(written);
            }

            if (token is { } outgoing)
            {
                feature.Outgoing = outgoing;
                WebMetrics.TokensSet.Add(1);
                string value = protector.Protect(outgoing);
                context.Response.Headers[_options.HeaderName] = value;
                context.Response.Cookies.Append(_options.CookieName, value, CookieOptions(context));
            }
            else if (feature.Dropped && feature.FromCookie)
            {
                context.Response.Cookies.Delete(_options.CookieName, CookieOptions(context));
            }

            return Task.CompletedTask;
        });

        // Grain calls made while handling the request carry the token (Orleans' RequestContext).
        using (CausalTokenContext.Use(feature.Incoming))
        {
            await next(context);
        }
    }

    private CookieOptions CookieOptions(HttpContext context) => new()
    {
        HttpOnly = true,
        Secure = context.Request.IsHttps,
        SameSite = SameSiteMode.Lax,
        MaxAge = _options.CookieLifetime,
        Path = "/",
        IsEssential = true,
    };

    [LoggerMessage(EventId = 5200, Level = LogLevel.Warning, Message = "Causal token ignored ({Reason}) on {Path}: the request is treated as carrying none")]
    private static partial void LogTokenIgnored(ILogger logger, string reason, PathString path);
}
