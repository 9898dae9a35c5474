using Microsoft.Extensions.Logging;

namespace OrleansLsn.Tracking;

internal sealed partial class LsnTrackerGrain
{
    /// <summary>Event ids of the tracker grain, in one place (range 1100–1199).</summary>
    internal static class EventIds
    {
        internal const int Activated = 1100;
        internal const int Deactivated = 1101;
        internal const int Subscribed = 1102;
        internal const int Unsubscribed = 1103;
        internal const int ObserverDropped = 1104;
        internal const int SubscriptionExpired = 1105;
        internal const int NotificationFailed = 1106;
        internal const int NotificationExpired = 1107;
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.Activated, LogLevel.Information, "Tracker grain for region {Region} activated on silo {Silo}")]
        internal static partial void Activated(ILogger logger, string region, SiloAddress silo);

        [LoggerMessage(EventIds.Deactivated, LogLevel.Information, "Tracker grain for region {Region} deactivated ({Reason}); replica connection closed")]
        internal static partial void Deactivated(ILogger logger, string region, string reason);

        [LoggerMessage(EventIds.Subscribed, LogLevel.Debug, "Tracker {Region}: observer {Observer} subscribed ({Count} subscribers)")]
        internal static partial void Subscribed(ILogger logger, string region, GrainId observer, int count);

        [LoggerMessage(EventIds.Unsubscribed, LogLevel.Debug, "Tracker {Region}: observer {Observer} unsubscribed ({Count} subscribers)")]
        internal static partial void Unsubscribed(ILogger logger, string region, GrainId observer, int count);

        [LoggerMessage(EventIds.ObserverDropped, LogLevel.Warning, "Tracker {Region}: dropped observer {Observer}, its push failed: {Error}")]
        internal static partial void ObserverDropped(ILogger logger, string region, GrainId observer, string error);

        [LoggerMessage(EventIds.SubscriptionExpired, LogLevel.Information, "Tracker {Region}: subscription of observer {Observer} expired (not renewed)")]
        internal static partial void SubscriptionExpired(ILogger logger, string region, GrainId observer);

        [LoggerMessage(EventIds.NotificationFailed, LogLevel.Warning, "Tracker {Region}: the notification for {Lsn} to observer {Observer} failed: {Error}")]
        internal static partial void NotificationFailed(ILogger logger, string region, Lsn lsn, GrainId observer, string error);

        [LoggerMessage(EventIds.NotificationExpired, LogLevel.Information, "Tracker {Region}: the notification request for {Lsn} from observer {Observer} expired before replay reached it")]
        internal static partial void NotificationExpired(ILogger logger, string region, Lsn lsn, GrainId observer);
    }
}
