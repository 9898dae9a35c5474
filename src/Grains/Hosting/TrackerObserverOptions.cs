namespace OrleansLsn.Hosting;

/// <summary>How an <see cref="ILsnTrackerGrain"/> treats its observers (section <c>OrleansLsn:Observers</c>).</summary>
public sealed class TrackerObserverOptions
{
    /// <summary>
    /// A subscription made with <see cref="ILsnTrackerGrain.Subscribe"/> expires unless renewed (subscribed again) within
    /// this time, so that subscriptions of clients that vanished do not live forever. Default 5 min.
    /// </summary>
    public TimeSpan SubscriptionExpiry { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A push to an observer that neither completes nor fails within this time counts as failed and the observer is
    /// dropped. Bounds what a vanished client costs: Orleans would otherwise wait for its 30 s response timeout, and
    /// other observers never wait for it at all (each has its own push in flight). Default 5 s.
    /// </summary>
    public TimeSpan PushTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A request made with <see cref="ILsnTrackerGrain.RequestNotification"/> that is not satisfied within this time is
    /// dropped without a push. Default 60 s (the longest wait a tracker grain accepts).
    /// </summary>
    public TimeSpan NotificationLifetime { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Most observers subscribed to one tracker (<see cref="ILsnTrackerGrain.Subscribe"/>); a new one past it is refused
    /// with <see cref="LimitExceededException"/> (renewing an existing subscription always works). Every advance is
    /// pushed to each of them, so this bounds a tracker's push work and memory. Default 10 000. Key
    /// <c>OrleansLsn:Observers:MaxSubscribers</c>.
    /// </summary>
    public int MaxSubscribers { get; set; } = 10_000;

    /// <summary>
    /// A client replay view without demand (<see cref="ILsnTrackerGrain.WatchReplay"/>) is pushed the tracker's state at
    /// most this often, and only when it changed: a region served by many application servers then costs its tracker at
    /// most one push per view per interval, while views with pending waits get every advance. An older position in an
    /// idle view only makes a wait ask for demand, never reads stale. Default 1 s. Key
    /// <c>OrleansLsn:Observers:ViewRefreshInterval</c>.
    /// </summary>
    public TimeSpan ViewRefreshInterval { get; set; } = TimeSpan.FromSeconds(1);
}
