using OrleansLsn.Client;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// The silo executable's part of the <c>OrleansLsn</c> section: cluster identity, membership, endpoints, TLS and the
/// HTTP endpoints. The grains' part (region, connection strings, slots) is <see cref="OrleansLsn.Hosting.OrleansLsnOptions"/>.
/// </summary>
public sealed class SiloHostOptions
{
    /// <summary>Orleans cluster id: silos and clients with the same id form one cluster. Default <c>orleanslsn</c>.</summary>
    public string ClusterId { get; set; } = "orleanslsn";

    /// <summary>Orleans service id (stable across deployments). Default <c>orleanslsn</c>.</summary>
    public string ServiceId { get; set; } = "orleanslsn";

    /// <summary>Where membership lives (its tables are created if missing); default: the primary. Never logged.</summary>
    public string? MembershipConnectionString { get; set; }

    /// <summary>
    /// A file whose content (without its trailing newline) is <see cref="MembershipConnectionString"/>, as container
    /// secrets provide it. Read once at start; not together with <see cref="MembershipConnectionString"/>.
    /// </summary>
    public string? MembershipConnectionStringFile { get; set; }

    /// <summary>Silo-to-silo TCP port. Default 11111.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway TCP port. Default 30000.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>
    /// The address other silos and clients use to reach this silo: an IP address or a host name resolved at start.
    /// Default: the first non-loopback IPv4 address of the machine, or 127.0.0.1.
    /// </summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>Port of the HTTP endpoint with <c>/healthz</c> and <c>/metrics</c> (0 = off). Default 8080.</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>Port of the Orleans Dashboard (0 = off). Default 0.</summary>
    public int DashboardPort { get; set; }

    /// <summary>Mutual TLS between silos and with clients (section <c>OrleansLsn:Tls</c>).</summary>
    public ClusterTlsOptions Tls { get; set; } = new();

    /// <summary>Traces exported over OTLP (section <c>OrleansLsn:Tracing</c>); off unless an endpoint is configured.</summary>
    public SiloTracingOptions Tracing { get; set; } = new();
}
