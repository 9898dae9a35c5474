namespace OrleansLsn;

/// <summary>Whether a tracker can currently see its replica.</summary>
[GenerateSerializer]
[Alias("OrleansLsn.TrackerHealthStatus")]
public enum TrackerHealthStatus
{
    /// <summary>Started, no poll has finished yet.</summary>
    Starting,

    /// <summary>The last poll of the replica succeeded.</summary>
    Healthy,

    /// <summary>The replica is unreachable or failing; waiters time out while the tracker reconnects with backoff.</summary>
    Degraded,

    /// <summary>Disposed.</summary>
    Stopped,
}
