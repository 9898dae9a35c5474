using Orleans.Configuration;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// OrleansLsn's membership defaults: a dead silo is noticed in seconds, not the 30–90 s of Orleans' defaults, so a
/// region's tracker moves quickly. Each can be overridden under <c>OrleansLsn:Membership</c> (the names of
/// <see cref="ClusterMembershipOptions"/>).
/// </summary>
public static class FastFailureDetection
{
    /// <summary>Probe timeout. Orleans' default: 5 s.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Largest probe timeout while the silo is degraded. Orleans' default: 4 × the probe timeout.</summary>
    public static readonly TimeSpan MaxProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary>How often the membership table is read. Orleans' default: 60 s.</summary>
    public static readonly TimeSpan TableRefreshTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How often a silo writes its I-am-alive time. Orleans' default: 30 s.</summary>
    public static readonly TimeSpan IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Client gateway list refresh. Orleans' default: 1 min.</summary>
    public static readonly TimeSpan GatewayListRefreshPeriod = TimeSpan.FromSeconds(5);

    /// <summary>Applies the defaults (before configuration overrides).</summary>
    public static void Apply(ClusterMembershipOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ProbeTimeout = ProbeTimeout;
        options.MaxProbeTimeout = MaxProbeTimeout;
        options.TableRefreshTimeout = TableRefreshTimeout;
        options.IAmAliveTablePublishTimeout = IAmAliveTablePublishTimeout;
    }
}
