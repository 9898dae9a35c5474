using System.Diagnostics.Metrics;

namespace OrleansLsn.AspNetCore;

/// <summary>The ASP.NET Core integration's instruments (meter <c>OrleansLsn.AspNetCore</c>).</summary>
internal static class WebMetrics
{
    internal const string MeterName = "OrleansLsn.AspNetCore";

    internal static readonly Meter Meter = new(MeterName, "1.0");

    internal static readonly Counter<long> Tokens = Meter.CreateCounter<long>(
        "orleanslsn.web.tokens", "{request}", "Requests by the causal token they carried: outcome absent, verified or ignored (with source header or cookie).");

    internal static readonly Counter<long> TokensSet = Meter.CreateCounter<long>(
        "orleanslsn.web.tokens.set", "{response}", "Responses that set the causal token because their request wrote.");

    internal static readonly Counter<long> Reads = Meter.CreateCounter<long>(
        "orleanslsn.web.reads", "{request}", "Requests by read decision (orleanslsn.read.outcome: no_token, replayed, replayed_after_wait, primary, stale, unavailable) and endpoint (http.route).");

    internal static readonly Histogram<double> ReadWait = Meter.CreateHistogram<double>(
        "orleanslsn.web.read.wait", "s", "How long a request's read decision took (the wait for the replica included), by outcome and endpoint.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
}
