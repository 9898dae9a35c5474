namespace OrleansLsn.Tracking;

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
