namespace OrleansLsn.Client;

/// <summary>How a client's <see cref="ReplayView"/> follows its region's tracker; checked by <see cref="ReplayViewOptionsValidator"/>.</summary>
public sealed class ReplayViewOptions
{
    /// <summary>
    /// With waits pending, this long without a push (since the demand was sent or the last push) makes the view register
    /// again and answer its lowest wait through <see cref="ILsnTrackerGrain.RequestAndAwait"/> (one call in flight per
    /// view) until pushes resume: a tracker that moved, a dropped registration or a lost gateway never leaves a wait
    /// hanging. A replica that simply does not advance also gets there, at the cost of that one call. Default 1 s;
    /// between 10 ms and 1 min.
    /// </summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often the view registers again while in use (the tracker forgets registrations not renewed within its
    /// subscription expiry, 5 min by default). Default 1 min; between 10 ms and 1 h.
    /// </summary>
    public TimeSpan RenewalPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long one call to the tracker (register, demand, unregister) may take before it counts as failed. Default 2 s; between 10 ms and 1 min.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// A view nobody waited on for this long ends its registration and leaves the client (the next wait in the region
    /// starts a new one): the last user of a region ends its subscription. Default 2 min; between 100 ms and 1 day.
    /// </summary>
    public TimeSpan IdleLifetime { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The first pause after a failed call to the tracker; it doubles up to <see cref="RetryMaxDelay"/>. Default 50 ms.</summary>
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The longest pause between failed calls. Default 1 s; at least <see cref="RetryInitialDelay"/>, at most 1 min.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock of deadlines and staleness; <see langword="null"/> for the system clock.</summary>
    public TimeProvider? TimeProvider { get; set; }
}
