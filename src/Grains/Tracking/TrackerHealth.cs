namespace OrleansLsn.Tracking;

/// <summary>Whether a tracker can currently see its replica.</summary>
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

/// <summary>A tracker's health.</summary>
/// <param name="Status">The state.</param>
/// <param name="LastError">The last error (type and message, never a connection string) while degraded; otherwise null.</param>
/// <param name="Since">When the tracker entered <paramref name="Status"/>.</param>
/// <param name="ConsecutiveFailures">Failed polls or connection attempts since the last success.</param>
public sealed record TrackerHealth(TrackerHealthStatus Status, string? LastError, DateTimeOffset Since, int ConsecutiveFailures)
{
    /// <summary><see langword="true"/> when <see cref="Status"/> is <see cref="TrackerHealthStatus.Healthy"/>.</summary>
    public bool IsHealthy => Status == TrackerHealthStatus.Healthy;
}
