using Microsoft.Extensions.Logging;

namespace OrleansLsn.Replication;

internal sealed partial class ReplicationGrain
{
    /// <summary>Event ids of the replication grain, in one place (range 2100–2199).</summary>
    internal static class EventIds
    {
        internal const int Activated = 2100;
        internal const int Deactivated = 2101;
        internal const int Subscribed = 2102;
        internal const int Unsubscribed = 2103;
        internal const int SubscriberDropped = 2104;
        internal const int SubscribeRefused = 2105;
        internal const int ForgetFailed = 2106;
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.Activated, LogLevel.Information, "Replication grain for slot {Slot} activated on silo {Silo}")]
        internal static partial void Activated(ILogger logger, string slot, SiloAddress silo);

        [LoggerMessage(EventIds.Deactivated, LogLevel.Information, "Replication grain for slot {Slot} deactivated ({Reason}); pump stopped, slot released")]
        internal static partial void Deactivated(ILogger logger, string slot, string reason);

        [LoggerMessage(EventIds.Subscribed, LogLevel.Information, "Replication grain {Slot}: observer {Observer} subscribed ({Count} subscribers)")]
        internal static partial void Subscribed(ILogger logger, string slot, GrainId observer, int count);

        [LoggerMessage(EventIds.Unsubscribed, LogLevel.Information, "Replication grain {Slot}: observer {Observer} unsubscribed ({Count} subscribers)")]
        internal static partial void Unsubscribed(ILogger logger, string slot, GrainId observer, int count);

        [LoggerMessage(EventIds.SubscriberDropped, LogLevel.Warning, "Replication grain {Slot}: dropped subscriber {Observer}, unreachable for {TimeoutSeconds} s; it no longer holds the slot: {Error}")]
        internal static partial void SubscriberDropped(ILogger logger, string slot, GrainId observer, double timeoutSeconds, string error);

        [LoggerMessage(EventIds.SubscribeRefused, LogLevel.Warning, "Replication grain {Slot}: refused subscriber {Observer}, the slot is not ready ({Kind}): {Error}")]
        internal static partial void SubscribeRefused(ILogger logger, string slot, GrainId observer, ReplicationErrorKind kind, string error);

        [LoggerMessage(EventIds.ForgetFailed, LogLevel.Warning, "Replication grain {Slot}: could not forget subscriber {Observer} on the primary; the next activation waits for it once more: {Error}")]
        internal static partial void ForgetFailed(ILogger logger, string slot, GrainId observer, string error);
    }
}
