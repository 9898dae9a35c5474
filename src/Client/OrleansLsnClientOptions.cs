namespace OrleansLsn.Client;

/// <summary>
/// The client's part of the <c>OrleansLsn</c> configuration section, the same section silos read (extra silo keys such
/// as <c>Region</c> are ignored here). Bound by <see cref="OrleansLsnClientBuilderExtensions"/> and validated by
/// <see cref="OrleansLsnClientOptionsValidator"/> when the host starts.
/// </summary>
public sealed class OrleansLsnClientOptions
{
    /// <summary>The configuration section this binds to.</summary>
    public const string SectionName = "OrleansLsn";

    /// <summary>The cluster id and service id silos use unless configured otherwise.</summary>
    public const string DefaultId = "orleanslsn";

    /// <summary>The Orleans cluster id (<c>ClusterOptions.ClusterId</c>); must match the silos'. Default <c>orleanslsn</c>.</summary>
    public string ClusterId { get; set; } = DefaultId;

    /// <summary>The Orleans service id (<c>ClusterOptions.ServiceId</c>); must match the silos'. Default <c>orleanslsn</c>.</summary>
    public string ServiceId { get; set; } = DefaultId;

    /// <summary>
    /// The PostgreSQL database holding Orleans' membership tables, where the client finds the gateways. When empty,
    /// <see cref="PrimaryConnectionString"/> is used, as silos do. Never logged.
    /// </summary>
    public string MembershipConnectionString { get; set; } = "";

    /// <summary>
    /// A file whose content (without its trailing newline) is <see cref="MembershipConnectionString"/>, as container
    /// secrets provide it (<c>/run/secrets/...</c>). Read once when the options are built; not together with
    /// <see cref="MembershipConnectionString"/>. A missing, unreadable or empty file stops the client, named by this key.
    /// </summary>
    public string? MembershipConnectionStringFile { get; set; }

    /// <summary>The primary; membership lives there unless <see cref="MembershipConnectionString"/> is set. Never logged.</summary>
    public string PrimaryConnectionString { get; set; } = "";

    /// <summary>
    /// A file whose content is <see cref="PrimaryConnectionString"/>; the same rules as
    /// <see cref="MembershipConnectionStringFile"/>.
    /// </summary>
    public string? PrimaryConnectionStringFile { get; set; }

    /// <summary>Gateway discovery and call timeouts of the client (keys <c>OrleansLsn:Client:*</c>).</summary>
    public ClientConnectionOptions Client { get; set; } = new();

    /// <summary>
    /// Mutual TLS with the gateways (keys <c>OrleansLsn:Tls:*</c>, the same as the silos'): <c>Required</c> by default,
    /// so a client without a certificate of the cluster's CA does not start unless <c>Mode</c> is <c>Disabled</c>.
    /// </summary>
    public ClusterTlsOptions Tls { get; set; } = new();

    /// <summary>The connection string membership is read from: <see cref="MembershipConnectionString"/>, else the primary.</summary>
    public string EffectiveMembershipConnectionString =>
        string.IsNullOrWhiteSpace(MembershipConnectionString) ? PrimaryConnectionString : MembershipConnectionString;
}
