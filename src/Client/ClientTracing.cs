using System.Diagnostics;

namespace OrleansLsn.Client;

/// <summary>
/// The client library's spans (source <c>OrleansLsn.Client</c>). An activity is created only when someone listens
/// (<see cref="ActivitySource.StartActivity(string, ActivityKind)"/> returns <see langword="null"/> otherwise), so an
/// untraced read costs one check.
/// </summary>
internal static class ClientTracing
{
    internal const string ReadSpan = "orleanslsn.read";
    internal const string ViewWaitSpan = "orleanslsn.view.wait";

    internal static readonly ActivitySource Source = new(OrleansLsnActivitySources.Client, "1.0");

    /// <summary>What the read decided: where it went, why, and how long it waited.</summary>
    internal static void Describe(Activity activity, ReadYourWritesRead read)
    {
        if (!activity.IsAllDataRequested)
        {
            return;
        }

        activity.SetTag("orleanslsn.route", RouteTag(read.Route));
        activity.SetTag("orleanslsn.reason", read.Reason.ToString());
        activity.SetTag("orleanslsn.read_region", read.Region ?? "primary");
        if (read.LastWrite is Lsn lsn)
        {
            activity.SetTag("orleanslsn.lsn", lsn.ToString());
        }

        if (read.Replay is Lsn replay)
        {
            activity.SetTag("orleanslsn.replay", replay.ToString());
        }

        activity.SetTag("orleanslsn.wait.duration", read.Waited.TotalSeconds);
    }

    /// <summary>The wait's end: ready or timed out, and the replay position it knew.</summary>
    internal static void Describe(Activity activity, LsnWaitResult result)
    {
        if (!activity.IsAllDataRequested)
        {
            return;
        }

        activity.SetTag("orleanslsn.outcome", result.IsReady ? "ready" : "timed_out");
        if (result.ReplayLsn is Lsn replay)
        {
            activity.SetTag("orleanslsn.replay", replay.ToString());
        }
    }

    /// <summary>Marks the span failed, with the exception's type (<c>error.type</c>) and what it said.</summary>
    internal static void Failed(Activity activity, Exception exception)
    {
        activity.SetStatus(ActivityStatusCode.Error, exception.Message);
        if (activity.IsAllDataRequested)
        {
            activity.SetTag("error.type", exception.GetType().FullName);
            if (exception is ReadYourWritesTimeoutException timeout)
            {
                activity.SetTag("orleanslsn.route", "none");
                activity.SetTag("orleanslsn.reason", nameof(ReadReason.TimedOut));
                activity.SetTag("orleanslsn.lsn", timeout.Lsn.ToString());
                if (timeout.ReplayLsn is Lsn replay)
                {
                    activity.SetTag("orleanslsn.replay", replay.ToString());
                }
            }
        }
    }

    internal static string RouteTag(ReadRoute route) => route.ToString().ToLowerInvariant();
}
