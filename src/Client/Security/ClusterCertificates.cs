using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OrleansLsn.Client;

/// <summary>
/// A node's certificate and the cluster's CA, loaded from <see cref="ClusterTlsOptions"/>, and the one rule for a peer's
/// certificate: it must chain to that CA (not to the machine's trust store) and be within its validity period.
/// </summary>
public sealed class ClusterCertificates : IDisposable
{
    private ClusterCertificates(X509Certificate2 certificate, X509Certificate2 authority)
    {
        Certificate = certificate;
        Authority = authority;
    }

    /// <summary>This node's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The cluster's CA.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>
    /// Loads the certificates. Problems are added to <paramref name="failures"/> with their configuration key (never a
    /// password or key material) and <see langword="null"/> is returned.
    /// </summary>
    public static ClusterCertificates? TryLoad(ClusterTlsOptions options, string keyPrefix, List<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(failures);
        int before = failures.Count;
        RequireFile(failures, keyPrefix + "CertificatePath", options.CertificatePath);
        RequireFile(failures, keyPrefix + "CaCertificatePath", options.CaCertificatePath);
        if (!string.IsNullOrEmpty(options.KeyPath))
        {
            RequireFile(failures, keyPrefix + "KeyPath", options.KeyPath);
        }

        // Password and PasswordFile together is a mistake to report, not a precedence to guess.
        string? password = SecretFile.Resolve(keyPrefix + "Password", options.Password, options.PasswordFile, failures);
        if (failures.Count > before)
        {
            return null;
        }

        bool keyInside = false;
        bool pem = string.IsNullOrEmpty(options.KeyPath) && IsPem(options.CertificatePath!, out keyInside);
        if (pem && !keyInside)
        {
            // Read as a PFX, a PEM file fails with "ASN1 corrupted data", which says nothing about what is missing.
            failures.Add($"{keyPrefix}CertificatePath: '{options.CertificatePath}' is a PEM certificate without its private key; give the key's PEM file in {keyPrefix}KeyPath (only a PFX/PKCS#12 file carries its own key).");
            return null;
        }

        X509Certificate2? certificate = null;
        try
        {
            certificate = LoadCertificate(options, password, pem && keyInside);
            if (!certificate.HasPrivateKey)
            {
                failures.Add($"{keyPrefix}CertificatePath: the certificate has no private key (give {keyPrefix}KeyPath for a PEM certificate).");
                certificate.Dispose();
                return null;
            }
        }
        catch (CryptographicException e)
        {
            failures.Add($"{keyPrefix}CertificatePath: the certificate or its key could not be read ({e.GetType().Name}: {e.Message}).");
            return null;
        }

        try
        {
            X509Certificate2 authority = X509CertificateLoader.LoadCertificateFromFile(options.CaCertificatePath!);
            return new ClusterCertificates(certificate, authority);
        }
        catch (CryptographicException e)
        {
            certificate.Dispose();
            failures.Add($"{keyPrefix}CaCertificatePath: the CA certificate could not be read ({e.GetType().Name}: {e.Message}).");
            return null;
        }
    }

    /// <summary>Whether <paramref name="peer"/> chains to the cluster's CA and is valid now.</summary>
    public bool IsTrusted(X509Certificate2? peer) => Refusal(peer) is null;

    /// <summary>
    /// Why <paramref name="peer"/> is refused (no certificate, its chain's problems such as <c>UntrustedRoot</c>,
    /// <c>PartialChain</c> or <c>NotTimeValid</c>), or <see langword="null"/> when it chains to the cluster's CA and is
    /// within its validity period. Only the configured CA is a root (the machine's trust store is never consulted) and
    /// nothing is downloaded.
    /// </summary>
    public string? Refusal(X509Certificate2? peer)
    {
        if (peer is null)
        {
            return "no certificate";
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationTime = DateTime.Now;
        if (chain.Build(peer))
        {
            return null;
        }

        string[] problems = [.. chain.ChainStatus.Select(s => s.Status).Where(s => s != X509ChainStatusFlags.NoError).Distinct().Select(s => s.ToString())];
        return problems.Length == 0 ? "chain not valid" : string.Join(", ", problems);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Certificate.Dispose();
        Authority.Dispose();
    }

    private static X509Certificate2 LoadCertificate(ClusterTlsOptions options, string? password, bool pemWithKeyInside)
    {
        if (!string.IsNullOrEmpty(options.KeyPath) || pemWithKeyInside)
        {
            // A null key path reads the key from the certificate's own file.
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(options.CertificatePath!, string.IsNullOrEmpty(options.KeyPath) ? null : options.KeyPath);
            // Re-import so that the key is usable by SslStream on every platform.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }

        return X509CertificateLoader.LoadPkcs12FromFile(options.CertificatePath!, password);
    }

    /// <summary>Whether the file is PEM text (a PFX is binary), and whether it holds a private key too.</summary>
    private static bool IsPem(string path, out bool keyInside)
    {
        keyInside = false;
        try
        {
            using var reader = new StreamReader(path);
            var buffer = new char[64 * 1024];
            string head = new(buffer, 0, reader.ReadBlock(buffer, 0, buffer.Length));
            if (!head.TrimStart().StartsWith("-----BEGIN ", StringComparison.Ordinal))
            {
                return false;
            }

            keyInside = head.Contains("PRIVATE KEY-----", StringComparison.Ordinal);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void RequireFile(List<string> failures, string key, string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            failures.Add($"{key} is required when OrleansLsn:Tls:Mode is Required.");
        }
        else if (!File.Exists(path))
        {
            failures.Add($"{key}: file '{path}' does not exist or cannot be read.");
        }
    }
}
