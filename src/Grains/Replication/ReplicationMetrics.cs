using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace OrleansLsn.Replication;

/// <summary>The pump's instruments (meter <c>OrleansLsn.Replication</c>), tagged with <c>orleanslsn.slot</c>.</summary>
internal static class ReplicationMetrics
{
    internal const string MeterName = "OrleansLsn.Replication";
    internal const string SlotTag = "orleanslsn.slot";

    internal static readonly Meter Meter = new(MeterName, "1.0");

    private static readonly ConcurrentDictionary<ReplicationPump, byte> Pumps = new();

    internal static readonly Counter<long> Changes = Meter.CreateCounter<long>(
        "orleanslsn.replication.changes", "{change}", "Row changes decoded and put into the backlog.");

    internal static readonly Counter<long> Batches = Meter.CreateCounter<long>(
        "orleanslsn.replication.batches.delivered", "{batch}", "Batches confirmed by a subscriber.");

    internal static readonly Counter<long> Reconnects = Meter.CreateCounter<long>(
        "orleanslsn.replication.reconnects", "{connection}", "Replication connections lost or refused, tagged with the error kind.");

    internal static readonly Counter<long> SubscriberFailures = Meter.CreateCounter<long>(
        "orleanslsn.replication.subscriber.failures", "{failure}", "Deliveries a subscriber failed (they are retried).");

    internal static readonly Counter<long> SubscribersDropped = Meter.CreateCounter<long>(
        "orleanslsn.replication.subscribers.dropped", "{subscriber}", "Subscribers a replication grain dropped because they could not be reached for the subscriber timeout.");

    internal static readonly Histogram<double> DeliveryDuration = Meter.CreateHistogram<double>(
        "orleanslsn.replication.delivery.duration", "s", "Time a subscriber took to confirm a batch.");

    static ReplicationMetrics()
    {
        Meter.CreateObservableGauge("orleanslsn.replication.backlog.bytes", () => Observe(p => p.Backlog.Bytes), "By",
            "Estimated bytes of batches not yet confirmed by every subscriber.");
        Meter.CreateObservableGauge("orleanslsn.replication.backlog.batches", () => Observe(p => p.Backlog.Count), "{batch}",
            "Batches not yet confirmed by every subscriber.");
        Meter.CreateObservableGauge("orleanslsn.replication.lag", () => Observe(p => p.LagBytes), "By",
            "WAL bytes between the acknowledged position and the server's current position.");
        Meter.CreateObservableGauge("orleanslsn.replication.paused", () => Observe(p => p.PauseReasons == PauseReasons.None ? 0 : 1), "{pump}",
            "1 while the pump is not reading from the server.");
    }

    internal static void Register(ReplicationPump pump) => Pumps.TryAdd(pump, 0);

    internal static void Unregister(ReplicationPump pump) => Pumps.TryRemove(pump, out _);

    private static IEnumerable<Measurement<long>> Observe(Func<ReplicationPump, long> read)
    {
        foreach (ReplicationPump pump in Pumps.Keys)
        {
            yield return new Measurement<long>(read(pump), new KeyValuePair<string, object?>(SlotTag, pump.Slot));
        }
    }
}
