using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansLsn.Client;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// The silo's check of every TLS peer (silos and clients, both directions): the cluster's rule of
/// <see cref="ClusterCertificates.Refusal"/>, and a warning naming the refused certificate (subject, issuer, validity,
/// thumbprint, the chain's problems; never key material). Orleans builds its TLS middleware before the host's logging
/// exists, so the logger is set once the host is built; until then refusals are still refused, only not logged.
/// </summary>
internal sealed partial class PeerCertificateCheck(ClusterCertificates certificates)
{
    private ILogger _logger = NullLogger.Instance;

    public ILogger Logger
    {
        get => Volatile.Read(ref _logger);
        set => Volatile.Write(ref _logger, value);
    }

    public bool IsTrusted(X509Certificate2? peer)
    {
        string? refusal = certificates.Refusal(peer);
        if (refusal is null)
        {
            return true;
        }

        if (peer is null)
        {
            LogRefusedWithoutCertificate(Logger);
        }
        else
        {
            LogRefused(Logger, peer.Subject, peer.Issuer, peer.NotBefore.ToUniversalTime(), peer.NotAfter.ToUniversalTime(), peer.Thumbprint, refusal);
        }

        return false;
    }

    [LoggerMessage(4210, LogLevel.Warning, "TLS handshake refused: the peer's certificate {Subject} (issuer {Issuer}, valid {NotBefore:u} to {NotAfter:u}, thumbprint {Thumbprint}) does not chain to the cluster's CA within its validity period: {Problems}")]
    private static partial void LogRefused(ILogger logger, string subject, string issuer, DateTime notBefore, DateTime notAfter, string thumbprint, string problems);

    [LoggerMessage(4211, LogLevel.Warning, "TLS handshake refused: the peer sent no certificate")]
    private static partial void LogRefusedWithoutCertificate(ILogger logger);
}
