using Microsoft.Extensions.Diagnostics.HealthChecks;
using OrleansLsn.Hosting;
using OrleansLsn.Tracking;

namespace OrleansLsn.Silo.Hosting;

/// <summary><c>silo</c>: healthy while this silo is an active member of the cluster.</summary>
internal sealed class SiloHealthCheck(ISiloStatusOracle oracle) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        SiloStatus status = oracle.CurrentStatus;
        var data = new Dictionary<string, object> { ["silo"] = oracle.SiloAddress.ToParsableString(), ["status"] = status.ToString() };
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy("The silo is an active member of the cluster.", data)
            : HealthCheckResult.Unhealthy($"The silo is {status}.", data: data));
    }
}

/// <summary><c>trackers</c>: the health of every region's tracker running on this silo; degraded if one cannot see its replica.</summary>
internal sealed class TrackersHealthCheck(SiloEngines engines) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<LsnTracker> trackers = engines.Trackers;
        var data = new Dictionary<string, object>();
        bool degraded = false;
        foreach (LsnTracker tracker in trackers)
        {
            TrackerHealth health = tracker.Health;
            degraded |= health.Status == TrackerHealthStatus.Degraded;
            data[tracker.Region] = health.LastError is null ? health.Status.ToString() : $"{health.Status}: {health.LastError}";
        }

        string description = trackers.Count == 0 ? "No tracker runs on this silo." : $"{trackers.Count} tracker(s) on this silo.";
        return Task.FromResult(degraded ? HealthCheckResult.Degraded(description, data: data) : HealthCheckResult.Healthy(description, data));
    }
}
