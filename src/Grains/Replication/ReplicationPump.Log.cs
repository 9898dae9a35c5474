using Microsoft.Extensions.Logging;

namespace OrleansLsn.Replication;

public sealed partial class ReplicationPump
{
    /// <summary>Event ids of the replication pump, in one place (range 2000–2099).</summary>
    internal static class EventIds
    {
        internal const int Started = 2000;
        internal const int Connected = 2001;
        internal const int ConnectionFailed = 2002;
        internal const int Terminal = 2003;
        internal const int Paused = 2004;
        internal const int Resumed = 2005;
        internal const int BackpressureOn = 2006;
        internal const int BackpressureOff = 2007;
        internal const int SlotCreated = 2008;
        internal const int PublicationCreated = 2009;
        internal const int SubscriberFailed = 2010;
        internal const int Stopped = 2011;
        internal const int WalsenderGone = 2012;
        internal const int SlotLosingWal = 2013;
        internal const int PrimaryChosen = 2014;
        internal const int AwaitingSubscribers = 2015;
        internal const int SubscriberRejoined = 2016;
        internal const int SubscriberDidNotRejoin = 2017;
        internal const int SubscribersNotRemembered = 2018;
        internal const int ForgetFailed = 2019;
        internal const int SnapshotTaken = 2020;
        internal const int SnapshotCopied = 2021;
        internal const int Rewinding = 2022;
        internal const int SnapshotFailed = 2023;
        internal const int CreationSnapshotKept = 2024;
        internal const int CreationSnapshotNotKept = 2025;
        internal const int CreationSnapshotReleased = 2026;
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.Started, LogLevel.Information, "Replication pump for slot {Slot} (publication {Publication}) started")]
        internal static partial void Started(ILogger logger, string slot, string publication);

        [LoggerMessage(EventIds.Connected, LogLevel.Information, "Replication pump for slot {Slot} streaming: walsender PID {Pid}, pgoutput protocol {Protocol}, status every {StatusIntervalMs} ms, from {Start}")]
        internal static partial void Connected(ILogger logger, string slot, int pid, int protocol, long statusIntervalMs, string start);

        [LoggerMessage(EventIds.ConnectionFailed, LogLevel.Warning, "Replication pump for slot {Slot}: {Kind}, retrying in {DelayMs} ms: {Error}")]
        internal static partial void ConnectionFailed(ILogger logger, string slot, ReplicationErrorKind kind, long delayMs, string error);

        [LoggerMessage(EventIds.Terminal, LogLevel.Error, "Replication pump for slot {Slot} stopped for good ({Kind}): {Error}")]
        internal static partial void Terminal(ILogger logger, string slot, ReplicationErrorKind kind, string error);

        [LoggerMessage(EventIds.Paused, LogLevel.Information, "Replication pump for slot {Slot} paused")]
        internal static partial void Paused(ILogger logger, string slot);

        [LoggerMessage(EventIds.Resumed, LogLevel.Information, "Replication pump for slot {Slot} resumed")]
        internal static partial void Resumed(ILogger logger, string slot);

        [LoggerMessage(EventIds.BackpressureOn, LogLevel.Debug, "Replication pump for slot {Slot}: backlog at high water ({Bytes} bytes, {Batches} batches), not reading")]
        internal static partial void BackpressureOn(ILogger logger, string slot, long bytes, int batches);

        [LoggerMessage(EventIds.BackpressureOff, LogLevel.Debug, "Replication pump for slot {Slot}: backlog below low water ({Bytes} bytes, {Batches} batches), reading again")]
        internal static partial void BackpressureOff(ILogger logger, string slot, long bytes, int batches);

        [LoggerMessage(EventIds.SlotCreated, LogLevel.Information, "Created replication slot {Slot} (pgoutput, failover {Failover}) at {Lsn}")]
        internal static partial void SlotCreated(ILogger logger, string slot, bool failover, string lsn);

        [LoggerMessage(EventIds.PublicationCreated, LogLevel.Information, "Created publication {Publication} for {Scope}")]
        internal static partial void PublicationCreated(ILogger logger, string publication, string scope);

        [LoggerMessage(EventIds.SubscriberFailed, LogLevel.Warning, "Replication pump for slot {Slot}: subscriber {Subscriber} failed ({Failures} so far), retrying the batch in {DelayMs} ms")]
        internal static partial void SubscriberFailed(ILogger logger, string slot, string subscriber, long failures, long delayMs, Exception error);

        [LoggerMessage(EventIds.Stopped, LogLevel.Information, "Replication pump for slot {Slot} stopped")]
        internal static partial void Stopped(ILogger logger, string slot);

        [LoggerMessage(EventIds.WalsenderGone, LogLevel.Warning, "Replication pump for slot {Slot}: walsender {Pid} no longer holds the slot (active: {Active}); reconnecting")]
        internal static partial void WalsenderGone(ILogger logger, string slot, int pid, string active);

        [LoggerMessage(EventIds.SlotLosingWal, LogLevel.Error, "Replication pump for slot {Slot}: the slot is losing its WAL (wal_status {WalStatus}) while paused; closing the connection")]
        internal static partial void SlotLosingWal(ILogger logger, string slot, string walStatus);

        [LoggerMessage(EventIds.PrimaryChosen, LogLevel.Information, "Replication pump for slot {Slot}: {Host} is the primary (skipped: {Skipped})")]
        internal static partial void PrimaryChosen(ILogger logger, string slot, string host, string skipped);

        [LoggerMessage(EventIds.AwaitingSubscribers, LogLevel.Information, "Replication pump for slot {Slot}: holding the slot for {Count} subscriber(s) of the previous pump until they subscribe again (at most {TimeoutMs} ms)")]
        internal static partial void AwaitingSubscribers(ILogger logger, string slot, int count, long timeoutMs);

        [LoggerMessage(EventIds.SubscriberRejoined, LogLevel.Information, "Replication pump for slot {Slot}: subscriber {Subscriber} of the previous pump is back")]
        internal static partial void SubscriberRejoined(ILogger logger, string slot, string subscriber);

        [LoggerMessage(EventIds.SubscriberDidNotRejoin, LogLevel.Warning, "Replication pump for slot {Slot}: subscriber {Subscriber} of the previous pump did not subscribe again within {TimeoutMs} ms; it no longer holds the slot and is forgotten")]
        internal static partial void SubscriberDidNotRejoin(ILogger logger, string slot, string subscriber, long timeoutMs);

        [LoggerMessage(EventIds.SubscribersNotRemembered, LogLevel.Warning, "Replication pump for slot {Slot}: subscribers are not remembered across pumps, so after a failover one that subscribes again later than another may miss changes: {Reason}")]
        internal static partial void SubscribersNotRemembered(ILogger logger, string slot, string reason);

        [LoggerMessage(EventIds.ForgetFailed, LogLevel.Warning, "Replication pump for slot {Slot}: could not forget subscriber {Subscriber} on the primary (the next pump waits for it once more): {Error}")]
        internal static partial void ForgetFailed(ILogger logger, string slot, string subscriber, string error);

        [LoggerMessage(EventIds.SnapshotTaken, LogLevel.Information, "Replication pump for slot {Slot}: subscriber {Subscriber} copies {Tables} table(s) in snapshot {Cut} ({Source}); the slot's confirmed position is held at {Hold} meanwhile")]
        internal static partial void SnapshotTaken(ILogger logger, string slot, string subscriber, int tables, string cut, string source, string hold);

        [LoggerMessage(EventIds.CreationSnapshotKept, LogLevel.Information, "Replication pump for slot {Slot}: the snapshot exported with the new slot ({Cut}, consistent point {ConsistentPoint}) is kept {LifetimeMs} ms for the first snapshot subscriber; the slot is held at its consistent point meanwhile")]
        internal static partial void CreationSnapshotKept(ILogger logger, string slot, string cut, string consistentPoint, long lifetimeMs);

        [LoggerMessage(EventIds.CreationSnapshotNotKept, LogLevel.Warning, "Replication pump for slot {Slot}: the snapshot exported with the new slot could not be {What}; snapshot subscribers get a snapshot of their own instead (as exact): {Error}")]
        internal static partial void CreationSnapshotNotKept(ILogger logger, string slot, string what, string error);

        [LoggerMessage(EventIds.CreationSnapshotReleased, LogLevel.Information, "Replication pump for slot {Slot}: the snapshot exported with the new slot is released ({Why})")]
        internal static partial void CreationSnapshotReleased(ILogger logger, string slot, string why);

        [LoggerMessage(EventIds.SnapshotCopied, LogLevel.Information, "Replication pump for slot {Slot}: subscriber {Subscriber} confirmed its snapshot ({Rows} rows in {Batches} batches, {ElapsedMs} ms); its stream continues from {Hold}")]
        internal static partial void SnapshotCopied(ILogger logger, string slot, string subscriber, long rows, long batches, long elapsedMs, string hold);

        [LoggerMessage(EventIds.Rewinding, LogLevel.Information, "Replication pump for slot {Slot}: a snapshot subscriber needs the stream from {Flushed} again; reconnecting")]
        internal static partial void Rewinding(ILogger logger, string slot, string flushed);

        [LoggerMessage(EventIds.SnapshotFailed, LogLevel.Warning, "Replication pump for slot {Slot}: the snapshot of subscriber {Subscriber} failed after {Rows} rows; the subscriber is dropped and must subscribe again for a new snapshot: {Error}")]
        internal static partial void SnapshotFailed(ILogger logger, string slot, string subscriber, long rows, string error);
    }
}
