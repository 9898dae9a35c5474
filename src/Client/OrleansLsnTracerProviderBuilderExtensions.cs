using Orleans.Diagnostics;
using OrleansLsn;

namespace OpenTelemetry.Trace;

/// <summary>OpenTelemetry tracing for OrleansLsn applications.</summary>
public static class OrleansLsnTracerProviderBuilderExtensions
{
    /// <summary>
    /// Listens to OrleansLsn's sources (<see cref="OrleansLsnActivitySources.Names"/>: <c>OrleansLsn.Client</c>,
    /// <c>OrleansLsn.AspNetCore</c>, <c>OrleansLsn.Tracker</c>) and to Orleans' grain call sources
    /// (<c>Microsoft.Orleans.Application</c>, <c>Microsoft.Orleans.Runtime</c>), so one trace follows a read-your-writes
    /// read from the request through the read decision and the grain calls to the silo. The client's Orleans activity
    /// propagation is turned on by <c>UseOrleansLsnClient</c>. Npgsql's own spans are added with <c>AddNpgsql()</c>
    /// (package Npgsql.OpenTelemetry); exporters are the application's.
    /// </summary>
    public static TracerProviderBuilder AddOrleansLsnInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (string name in OrleansLsnActivitySources.Names)
        {
            builder.AddSource(name);
        }

        return builder.AddSource(ActivitySources.ApplicationGrainActivitySourceName, ActivitySources.RuntimeActivitySourceName);
    }
}
