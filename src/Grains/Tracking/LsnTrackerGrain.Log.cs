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
        internal const int ViewAdded = 1108;
        internal const int ViewRemoved = 1109;
        internal const int ViewDropped = 1110;
        internal const int ViewExpired = 1111;
        internal const int CallerAtCap = 1112;
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

        [LoggerMessage(EventIds.ViewAdded, LogLevel.Debug, "Tracker {Region}: replay view {View} registered ({Count} views)")]
        internal static partial void ViewAdded(ILogger logger, string region, GrainId view, int count);

        [LoggerMessage(EventIds.ViewRemoved, LogLevel.Debug, "Tracker {Region}: replay view {View} removed ({Count} views)")]
        internal static partial void ViewRemoved(ILogger logger, string region, GrainId view, int count);

        [LoggerMessage(EventIds.ViewDropped, LogLevel.Warning, "Tracker {Region}: dropped replay view {View}, its push failed: {Error}")]
        internal static partial void ViewDropped(ILogger logger, string region, GrainId view, string error);

        [LoggerMessage(EventIds.ViewExpired, LogLevel.Information, "Tracker {Region}: replay view {View} expired (not renewed)")]
        internal static partial void ViewExpired(ILogger logger, string region, GrainId view);

        [LoggerMessage(EventIds.CallerAtCap, LogLevel.Warning, "Tracker {Region}: caller {Caller} reached its cap of {Limit} pending waits (OrleansLsn:Tracker:MaxPendingWaitersPerClient); its further waits are refused until some end")]
        internal static partial void CallerAtCap(ILogger logger, string region, string caller, int limit);
    }
}
