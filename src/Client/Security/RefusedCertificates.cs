using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace OrleansLsn.Client;

/// <summary>
/// The last gateway certificate this client refused, and why, so that a failed connection can say which certificate
/// was refused by which side instead of Orleans' "The remote certificate was rejected".
/// </summary>
internal sealed class RefusedCertificates
{
    private string? _last;

    /// <summary>The refusal since the last call, described (subject, issuer, validity, thumbprint, reason), or <see langword="null"/>.</summary>
    internal string? Take() => Interlocked.Exchange(ref _last, null);

    internal void Refused(X509Certificate? certificate, string reason) =>
        Volatile.Write(ref _last, certificate is null ? $"no certificate ({reason})" : $"{Describe(certificate)}: {reason}");

    /// <summary>A certificate as an operator compares it: subject, issuer, validity and thumbprint (nothing secret).</summary>
    internal static string Describe(X509Certificate certificate)
    {
        using var c = new X509Certificate2(certificate);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"subject '{c.Subject}', issuer '{c.Issuer}', valid {c.NotBefore.ToUniversalTime():yyyy-MM-dd} to {c.NotAfter.ToUniversalTime():yyyy-MM-dd}, SHA-1 thumbprint {c.Thumbprint}");
    }
}
