namespace OrleansLsn.Tracking;

/// <summary>Settings of one <see cref="LsnTracker"/>. Defaults suit a replica on the same LAN.</summary>
public sealed class LsnTrackerOptions
{
    /// <summary>
    /// Connection string of the region's replica (a hot standby, or a primary: then every LSN counts as replicated).
    /// <see langword="null"/> makes a push-only tracker that learns positions only from <see cref="LsnTracker.ReportReplay"/>.
    /// The tracker opens exactly one connection from it, whatever the number of waiters. It is never logged.
    /// </summary>
    public string? ReplicaConnectionString { get; set; }

    /// <summary>Timeout of a wait that does not give one. Default 3 s.</summary>
    public TimeSpan DefaultWaitTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Largest timeout a wait may ask for; larger ones are rejected as a caller error. Default 10 min.</summary>
    public TimeSpan MaxWaitTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Spacing of replica polls while waiters are pending (outside the <see cref="FollowWindow"/>). Default 1 ms: a
    /// waiter is released within about 1 ms plus one round trip of the replica's actual replay. The watch loop runs on
    /// its own thread and sleeps with the OS's high-resolution wait, so 1 ms means 1 ms even where .NET timers tick
    /// every 4 ms. <see cref="TimeSpan.Zero"/> polls back to back (lowest latency,
    /// one busy backend on the replica).
    /// </summary>
    public TimeSpan ActivePollInterval { get; set; } = TimeSpan.FromMilliseconds(1);

    /// <summary>
    /// After a new waiter arrives, poll back to back for this long before falling back to
    /// <see cref="ActivePollInterval"/>: a fresh commit is usually replayed within a few milliseconds, and following it
    /// closely wakes its waiter as soon as a tight poll would. Default 5 ms; <see cref="TimeSpan.Zero"/> disables it.
    /// </summary>
    public TimeSpan FollowWindow { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Spacing of polls while only replay subscribers (no waiters) are interested. Default 10 ms.</summary>
    public TimeSpan WatchPollInterval { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Spacing of polls with nobody waiting or subscribed, to keep <see cref="LsnTracker.LastReplay"/> and health fresh.
    /// Default 1 s; <see cref="Timeout.InfiniteTimeSpan"/> stops polling entirely while idle (a new waiter wakes it).
    /// </summary>
    public TimeSpan IdlePollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A poll (or connection attempt) that takes longer counts as a failure: slow or hung replica. Applied as Npgsql's
    /// command and connect timeouts, so it is rounded up to whole seconds. Default 2 s.
    /// </summary>
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>First delay before reconnecting after a failure; it doubles per failure. Default 50 ms.</summary>
    public TimeSpan ReconnectInitialDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Cap of the reconnect delay. Default 5 s.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The default of <see cref="MaxPendingWaiters"/>.</summary>
    public const int DefaultMaxPendingWaiters = 1_000_000;

    /// <summary>
    /// Most waiters (awaits and notification requests together) this tracker holds at once; one more is refused with
    /// <see cref="LimitExceededException"/> (nothing is registered, earlier waiters go on). A pending waiter costs about
    /// 1.7 KB of silo memory through the grain (measured), so the default of 1 000 000 bounds a tracker near 2 GB; lower
    /// it on small silos. Configuration key <c>OrleansLsn:Tracker:MaxPendingWaiters</c>.
    /// </summary>
    public int MaxPendingWaiters { get; set; } = DefaultMaxPendingWaiters;

    /// <summary>
    /// Most waits and notification requests one caller (a client, or a grain) may have pending at the tracker grain; one
    /// more from that caller is refused with <see cref="LimitExceededException"/> while other callers are still served,
    /// so no single client takes a region's capacity. Waits decided in a client's replay view never count here (they
    /// are not grain calls). Default 10 000. Configuration key <c>OrleansLsn:Tracker:MaxPendingWaitersPerClient</c>;
    /// the grain applies it (the engine has no notion of callers).
    /// </summary>
    public int MaxPendingWaitersPerClient { get; set; } = 10_000;
}
