using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLsn.Client;

namespace OrleansLsn.AspNetCore;

/// <summary>
/// Decides where the request's reads go (after routing, so the endpoint's bound is known): the request's token, as the
/// causal token middleware read it, goes to <see cref="ReadRouter.DecideAsync"/>; the decision is put in the request's
/// <see cref="ReadScope"/>. A decision of no read answers 503 with <c>Retry-After</c> before the endpoint runs; a stale
/// read is said in a header; a token the router refused is dropped (one warning) and replaced or cleared on the response.
/// </summary>
internal sealed partial class ReadDecisionMiddleware(
    RequestDelegate next, ReadRouter router, IOptions<ReadDecisionOptions> options, ILogger<ReadDecisionMiddleware> logger)
{
    private readonly ReadDecisionOptions _options = options.Value;

    public async Task InvokeAsync(HttpContext context)
    {
        Endpoint? endpoint = context.GetEndpoint();
        if (endpoint is null || endpoint.Metadata.GetMetadata<NoReadDecisionAttribute>() is not null)
        {
            await next(context);
            return;
        }

        CausalTokenFeature? token = context.GetCausalToken()
            ?? throw new InvalidOperationException("UseReadYourWrites needs the causal token middleware before it: call app.UseReadYourWrites(), which adds both, instead of the read decision alone.");
        ReadBound bound = endpoint.Metadata.GetMetadata<ReadYourWritesAttribute>()?.Resolve(router.DefaultBound) ?? router.DefaultBound;
        string route = (endpoint as RouteEndpoint)?.RoutePattern.RawText ?? endpoint.DisplayName ?? "unknown";

        ReadDecision decision;
        using (Activity? activity = WebTelemetry.Source.StartActivity("orleanslsn.read_decision"))
        {
            decision = await router.DecideAsync(token.Incoming, bound, context.RequestAborted);
            if (activity is not null)
            {
                activity.SetTag("orleanslsn.region", decision.Region);
                activity.SetTag("orleanslsn.read.outcome", decision.OutcomeName);
                activity.SetTag("orleanslsn.token.verdict", decision.Verdict.ToString());
                activity.SetTag("orleanslsn.token.lsn", decision.Token?.Lsn.ToString());
                activity.SetTag("orleanslsn.replay.lsn", decision.Replay?.ToString());
                activity.SetTag("orleanslsn.read.waited_ms", decision.Waited.TotalMilliseconds);
                activity.SetTag("http.route", route);
            }
        }

        Record(decision, route);
        context.RequestServices.GetRequiredService<ReadScope>().Decision = decision;
        context.Features.Set(decision);
        if (decision.Verdict is not (TokenVerdict.None or TokenVerdict.Accepted))
        {
            token.Refuse(decision.Why, replacement: decision.Replacement);
            LogTokenRefused(logger, decision.Verdict, decision.Why, context.Request.Path);
        }

        if (_options.DebugHeader)
        {
            context.Response.Headers[_options.DebugHeaderName] = string.Create(
                CultureInfo.InvariantCulture,
                $"{decision.OutcomeName}; region={decision.Region}; waited-ms={decision.Waited.TotalMilliseconds:0.#}; token={decision.Token?.Lsn.ToString() ?? "none"}; replay={decision.Replay?.ToString() ?? "unknown"}; why=\"{decision.Why.Replace('"', '\'')}\"");
        }

        if (decision.Outcome == ReadOutcome.Stale)
        {
            context.Response.Headers[_options.StaleHeaderName] = string.Create(
                CultureInfo.InvariantCulture,
                $"replica={decision.Region}; token={decision.Token?.Lsn}; replay={decision.Replay?.ToString() ?? "unknown"}; waited-ms={decision.Waited.TotalMilliseconds:0.#}");
        }

        if (decision.IsUnavailable)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = ((int)Math.Ceiling(_options.RetryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync("Your last change is not readable here yet; try again in a moment.", context.RequestAborted);
            return;
        }

        // Grain calls made while handling the request carry the token as decided (a refused one is dropped).
        using (CausalTokenContext.Use(token.Incoming))
        {
            await next(context);
        }
    }

    private static void Record(ReadDecision decision, string route)
    {
        var tags = new TagList { { "orleanslsn.read.outcome", decision.OutcomeName }, { "http.route", route } };
        WebMetrics.Reads.Add(1, tags);
        WebMetrics.ReadWait.Record(decision.Waited.TotalSeconds, tags);
    }

    [LoggerMessage(EventId = 5201, Level = LogLevel.Warning, Message = "Causal token refused ({Verdict}: {Why}) on {Path}")]
    private static partial void LogTokenRefused(ILogger logger, TokenVerdict verdict, string why, PathString path);
}
