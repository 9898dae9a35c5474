using System.Diagnostics.Metrics;

namespace OrleansLsn.Tracking;

/// <summary>The tracker's instruments (meter <c>OrleansLsn.Tracker</c>), tagged with <c>orleanslsn.region</c>.</summary>
internal static class TrackerMetrics
{
    internal const string MeterName = "OrleansLsn.Tracker";

    internal static readonly Meter Meter = new(MeterName, "1.0");

    internal static readonly Counter<long> Waits = Meter.CreateCounter<long>(
        "orleanslsn.tracker.waits", "{wait}", "Waits finished, tagged by outcome (ready, timed_out, cancelled).");

    internal static readonly Histogram<double> WaitDuration = Meter.CreateHistogram<double>(
        "orleanslsn.tracker.wait.duration", "s", "Time from registering a wait to its release or timeout.");

    internal static readonly Counter<long> Polls = Meter.CreateCounter<long>(
        "orleanslsn.tracker.polls", "{query}", "Replay position queries sent to the replica.");

    internal static readonly Counter<long> PollErrors = Meter.CreateCounter<long>(
        "orleanslsn.tracker.poll.errors", "{error}", "Failed connection attempts and replay position queries.");

    internal static readonly Counter<long> ObserversDropped = Meter.CreateCounter<long>(
        "orleanslsn.tracker.observers.dropped", "{observer}", "Observers a tracker grain dropped because a push failed or timed out.");

    internal static readonly Counter<long> WaitsRejected = Meter.CreateCounter<long>(
        "orleanslsn.tracker.waits.rejected", "{wait}", "Waits and notification requests refused because the tracker held MaxPendingWaiters.");

    internal static readonly UpDownCounter<long> PendingWaiters = Meter.CreateUpDownCounter<long>(
        "orleanslsn.tracker.waiters.pending", "{waiter}", "Waiters currently registered.");

    internal static readonly Counter<long> ViewPushes = Meter.CreateCounter<long>(
        "orleanslsn.tracker.view.pushes", "{push}", "States pushed to client replay views (every advance for views with demand, at most one per refresh interval otherwise).");
}
