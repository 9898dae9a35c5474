using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace OrleansLsn.Runtime;

/// <summary>The silo's identity, endpoint and limits. Validated at start (<see cref="SiloOptionsValidator"/>).</summary>
public sealed class SiloOptions
{
    /// <summary>The cluster this silo belongs to; clients must name the same one. Default <c>"dev"</c>.</summary>
    public string ClusterId { get; set; } = "dev";

    /// <summary>The shared secret clients must prove at the handshake (at least 16 characters). Never logged and never sent.</summary>
    public string ClusterSecret { get; set; } = string.Empty;

    /// <summary>This silo's name in logs and in the handshake; default: machine name and process id.</summary>
    public string? SiloName { get; set; }

    /// <summary>The address the gateway listens on. Default: loopback.</summary>
    public IPAddress ListenAddress { get; set; } = IPAddress.Loopback;

    /// <summary>The gateway port; 0 picks a free one (see <see cref="Silo.EndPoint"/>). Default 30000, as in Orleans.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>A certificate with a private key turns on TLS for every connection. Default: none (plain TCP).</summary>
    public X509Certificate2? TlsCertificate { get; set; }

    /// <summary>Default response timeout of calls made by grains. Default 30 s.</summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a new connection may take to authenticate before it is closed. Default 5 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The largest frame accepted from an authenticated peer; larger ones close the connection. Default 16 MiB.</summary>
    public int MaxFrameSize { get; set; } = 16 * 1024 * 1024;

    /// <summary>Unanswered requests per connection before the silo stops reading it (backpressure). Default 10 000.</summary>
    public int MaxPendingRequestsPerConnection { get; set; } = 10_000;

    /// <summary>
    /// Whether a request may interleave with the requests of a non-reentrant grain that are waiting on it through a
    /// call chain (A → B → A), instead of deadlocking until the timeout. Default true (Orleans: opt-in per call).
    /// </summary>
    public bool AllowCallChainReentrancy { get; set; } = true;
}

/// <summary>When idle activations are deactivated (Orleans: <c>GrainCollectionOptions</c>).</summary>
public sealed class GrainCollectionOptions
{
    /// <summary>An activation idle for this long is deactivated. Default 15 min.</summary>
    public TimeSpan CollectionAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How often idle activations are looked for. Default 1 min.</summary>
    public TimeSpan CollectionQuantum { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long <c>OnActivateAsync</c> may take; its token is cancelled after this. Default 30 s.</summary>
    public TimeSpan ActivationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long <c>OnDeactivateAsync</c> may take; its token is cancelled after this. Default 30 s.</summary>
    public TimeSpan DeactivationTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
