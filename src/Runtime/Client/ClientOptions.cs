using System.Net.Security;

namespace OrleansLsn.Runtime;

/// <summary>How a client reaches the cluster. Validated when the client starts (<see cref="ClientOptionsValidator"/>).</summary>
public sealed class ClientOptions
{
    /// <summary>The cluster to join; must match the silos' <c>ClusterId</c>. Default <c>"dev"</c>.</summary>
    public string ClusterId { get; set; } = "dev";

    /// <summary>The shared secret the silos require at the handshake (at least 16 characters). Never logged and never sent.</summary>
    public string ClusterSecret { get; set; } = string.Empty;

    /// <summary>Gateway silos as <c>host:port</c>, tried in order; at least one.</summary>
    public IList<string> Gateways { get; } = [];

    /// <summary>Default response timeout of a call; <see cref="ResponseTimeoutAttribute"/> overrides it per method. Default 30 s.</summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the first connect keeps trying unreachable gateways before failing. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one TCP connect plus handshake may take. Default 5 s.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest wait between reconnect attempts (backoff starts at 50 ms and doubles). Default 5 s.</summary>
    public TimeSpan MaxReconnectBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Use TLS to the gateways. Default false.</summary>
    public bool UseTls { get; set; }

    /// <summary>The host name the silo's certificate must match; default: the gateway's host.</summary>
    public string? TlsTargetHost { get; set; }

    /// <summary>Custom certificate validation (for example, pinning a self-signed certificate). Default: the system's.</summary>
    public RemoteCertificateValidationCallback? TlsCertificateValidation { get; set; }

    /// <summary>The largest frame the client accepts. Default 16 MiB.</summary>
    public int MaxFrameSize { get; set; } = 16 * 1024 * 1024;
}
