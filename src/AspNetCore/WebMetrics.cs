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
}
