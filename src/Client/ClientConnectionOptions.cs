namespace OrleansLsn.Client;

/// <summary>How the client finds gateways and how long it waits for calls (keys <c>OrleansLsn:Client:*</c>).</summary>
public sealed class ClientConnectionOptions
{
    /// <summary>
    /// How often the client re-reads the gateway list from the membership table (<c>GatewayOptions.GatewayListRefreshPeriod</c>).
    /// Default 5 s, instead of Orleans' 1 min, so that a client notices new and dead gateways quickly. Between 100 ms and 1 h.
    /// </summary>
    public TimeSpan GatewayListRefreshPeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a grain call may take before it fails with <see cref="TimeoutException"/> (<c>ClientMessagingOptions.ResponseTimeout</c>);
    /// the timeout also cancels the call on the silo. Methods with their own <c>[ResponseTimeout]</c>, such as
    /// <see cref="ILsnTrackerGrain.RequestAndAwait"/>, keep theirs. Default 30 s; between 100 ms and 1 h.
    /// </summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long starting the client may try to connect before it fails with <see cref="ClusterConnectException"/>, which
    /// names the cluster id, the membership database and what was found there (no gateway of this cluster id, gateways
    /// that refused, a certificate one side refused). Failures that retrying cannot cure (a certificate refused) fail at
    /// once. Silos that start later than the client are waited for within this time. Default 30 s; between 1 s and 1 h.
    /// Key <c>OrleansLsn:Client:ConnectTimeout</c>.
    /// </summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether Orleans logs every option of the client at start (about 100 lines at information level). Default
    /// <see langword="false"/>: those lines are filtered out (category <c>Orleans.ClientOptionsLogger</c>); set it to see
    /// them. Key <c>OrleansLsn:Client:LogOptions</c>.
    /// </summary>
    public bool LogOptions { get; set; }
}
