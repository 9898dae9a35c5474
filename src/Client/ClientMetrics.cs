using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace OrleansLsn.Client;

/// <summary>The client library's instruments (meter <c>OrleansLsn.Client</c>), tagged with <c>orleanslsn.region</c>.</summary>
internal static class ClientMetrics
{
    internal const string MeterName = "OrleansLsn.Client";

    internal static readonly Meter Meter = new(MeterName, "1.0");

    internal static readonly Counter<long> ViewWaits = Meter.CreateCounter<long>(
        "orleanslsn.client.view.waits", "{wait}", "Waits decided in replay views, by outcome (ready_at_once, ready, timed_out, cancelled, region_unavailable).");

    internal static readonly Counter<long> Reads = Meter.CreateCounter<long>(
        "orleanslsn.client.reads", "{read}", "Read connections handed out by read-your-writes sessions, by route (replica, other_replica, primary) and reason.");

    internal static TagList Tag(TagList tags, string key, string value)
    {
        tags.Add(key, value);
        return tags;
    }
}
