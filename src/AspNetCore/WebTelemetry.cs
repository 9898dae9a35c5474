using System.Diagnostics;

namespace OrleansLsn.AspNetCore;

/// <summary>The ASP.NET Core integration's traces: activity source <c>OrleansLsn.AspNetCore</c>.</summary>
internal static class WebTelemetry
{
    internal const string SourceName = OrleansLsnActivitySources.AspNetCore;

    internal static readonly ActivitySource Source = new(SourceName, "1.0");
}
