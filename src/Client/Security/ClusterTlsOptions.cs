namespace OrleansLsn.Client;

/// <summary>Whether connections of the cluster use TLS.</summary>
public enum ClusterTlsMode
{
    /// <summary>Mutual TLS between silos and with clients; certificates are validated against the cluster's CA.</summary>
    Required,

    /// <summary>Plain TCP: anyone who reaches a port can call any grain. Logged as a warning at start.</summary>
    Disabled,
}

/// <summary>TLS settings (section <c>OrleansLsn:Tls</c>). Paths are read at start; a missing or unreadable file stops the silo.</summary>
public sealed class ClusterTlsOptions
{
    /// <summary><see cref="ClusterTlsMode.Required"/> (default) or <see cref="ClusterTlsMode.Disabled"/>.</summary>
    public ClusterTlsMode Mode { get; set; } = ClusterTlsMode.Required;

    /// <summary>This node's certificate: PEM (with <see cref="KeyPath"/>) or PFX/PKCS#12 (with a password).</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key of <see cref="CertificatePath"/>; leave empty for a PFX.</summary>
    public string? KeyPath { get; set; }

    /// <summary>The PFX password (prefer <see cref="PasswordFile"/>; not together with it). Never logged.</summary>
    public string? Password { get; set; }

    /// <summary>
    /// A file holding the PFX password (as container secrets provide it; its trailing newline is not part of it). Not
    /// together with <see cref="Password"/>: both set is a configuration error.
    /// </summary>
    public string? PasswordFile { get; set; }

    /// <summary>The cluster's CA certificate (PEM or DER): the only root a peer's certificate may chain to.</summary>
    public string? CaCertificatePath { get; set; }
}
