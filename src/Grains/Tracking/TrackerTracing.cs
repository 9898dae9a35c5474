using System.Diagnostics;

namespace OrleansLsn.Tracking;

/// <summary>
/// The tracker grain's spans (source <c>OrleansLsn.Tracker</c>): only a wait the tracker actually holds gets one, as a
/// child of Orleans' span for the call; a wait answered at once is Orleans' span alone.
/// </summary>
internal static class TrackerTracing
{
    internal const string HeldWaitSpan = "orleanslsn.tracker.wait";

    internal static readonly ActivitySource Source = new(OrleansLsnActivitySources.Tracker, "1.0");

    /// <summary>Starts the span of a held wait without making it current (the caller's method is not async).</summary>
    internal static Activity? StartHeldWait(string region, Lsn lsn)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        Activity? caller = Activity.Current;
        Activity? held = Source.StartActivity(HeldWaitSpan);
        if (held is null)
        {
            return null;
        }

        Activity.Current = caller;
        held.SetTag("orleanslsn.region", region);
        held.SetTag("orleanslsn.lsn", lsn.ToString());
        return held;
    }

    internal static void Ended(Activity held, LsnWaitResult result)
    {
        held.SetTag("orleanslsn.outcome", result.IsReady ? "ready" : "timed_out");
        if (result.ReplayLsn is Lsn replay)
        {
            held.SetTag("orleanslsn.replay", replay.ToString());
        }
    }

    internal static void Failed(Activity held, Exception exception)
    {
        held.SetStatus(ActivityStatusCode.Error, exception.Message);
        held.SetTag("error.type", exception.GetType().FullName);
    }
}
