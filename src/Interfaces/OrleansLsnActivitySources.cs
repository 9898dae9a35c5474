namespace OrleansLsn;

/// <summary>
/// The names of OrleansLsn's <see cref="System.Diagnostics.ActivitySource"/>s (traces), one per package. Listen to them
/// with OpenTelemetry (<c>AddSource(...)</c>, or <c>AddOrleansLsnInstrumentation()</c> of the client package, which also
/// adds Orleans' own sources) or with an <see cref="System.Diagnostics.ActivityListener"/>. The spans and their tags are
/// described in the operations guide (docs/operations.md, "Traces").
/// </summary>
public static class OrleansLsnActivitySources
{
    /// <summary>The client library's source: one span per read-your-writes read, and one per wait a replay view holds.</summary>
    public const string Client = "OrleansLsn.Client";

    /// <summary>The ASP.NET Core integration's source.</summary>
    public const string AspNetCore = "OrleansLsn.AspNetCore";

    /// <summary>The tracker grain's source (in silos): one span per wait the tracker actually holds.</summary>
    public const string Tracker = "OrleansLsn.Tracker";

    /// <summary>Every OrleansLsn source: a wildcard as OpenTelemetry's <c>AddSource</c> accepts it.</summary>
    public const string All = "OrleansLsn.*";

    /// <summary>Each OrleansLsn source by name.</summary>
    public static IReadOnlyList<string> Names { get; } = [Client, AspNetCore, Tracker];
}
