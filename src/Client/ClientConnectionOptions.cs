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
}
