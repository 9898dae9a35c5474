namespace OrleansLsn.Client;

/// <summary>
/// How an <see cref="ObserverSubscription"/> keeps itself subscribed; checked by <see cref="SubscriptionOptionsValidator"/>.
/// </summary>
/// <remarks>
/// A grain activation that starts anew (its silo died, it was deactivated or moved) has no subscribers until they
/// subscribe again, and a tracker drops subscriptions not renewed within its <c>Observers:SubscriptionExpiry</c>
/// (5 min by default). Subscribing again is idempotent on both grains, so the subscription simply does it every
/// <see cref="RenewalPeriod"/>: after a failover, pushes resume within about one period (plus the time Orleans takes to
/// notice a dead silo).
/// </remarks>
public sealed class SubscriptionOptions
{
    /// <summary>
    /// How often the subscription subscribes again. Default 2 s (one cheap grain call; with a tracker's 5 min expiry a
    /// subscription survives 150 missed renewals). Between 10 ms and 1 min.
    /// </summary>
    public TimeSpan RenewalPeriod { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The pause before trying again after a failed renewal; it doubles up to <see cref="RetryMaxDelay"/>. Default 100 ms.</summary>
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest pause between attempts while renewals keep failing (a region with no silo). Default 5 s; at least <see cref="RetryInitialDelay"/>.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one subscribe or unsubscribe call may take before it counts as failed. Default 5 s; between 10 ms and 5 min.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long the first subscribe call may take. A replication slot's first subscriber waits until the slot exists,
    /// and creating it waits for the transactions running on the primary, so this is longer than
    /// <see cref="CallTimeout"/>. Default 30 s; between 10 ms and 5 min.
    /// </summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The clock of renewals and retries; <see langword="null"/> for the client's <see cref="TimeProvider"/> service, else the system clock.</summary>
    public TimeProvider? TimeProvider { get; set; }
}
