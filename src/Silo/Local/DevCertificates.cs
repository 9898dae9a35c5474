using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OrleansLsn.Silo.Local;

/// <summary>
/// A throw-away certificate authority and certificates signed by it, written as PEM files into a folder of a local
/// deployment (never into the repository): what the demo and the local cluster use so that TLS stays on. The CA's
/// private key is never written: it stays in this object's memory (to issue more certificates) until it is disposed.
/// </summary>
public sealed class DevCertificates : IDisposable
{
    private readonly X509Certificate2 _ca;

    private DevCertificates(string folder, X509Certificate2 ca)
    {
        Folder = folder;
        _ca = ca;
    }

    public string Folder { get; }

    public string CaCertificatePath => Path.Combine(Folder, "ca.crt");

    public static DevCertificates Create(string folder, params string[] nodes)
    {
        Directory.CreateDirectory(folder);
        using RSA caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=OrleansLsn local CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, critical: false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        // The CA's validity starts a week back so that it can sign certificates already expired (tests of refusals).
        var certificates = new DevCertificates(folder, caRequest.CreateSelfSigned(now.AddDays(-7), now.AddDays(30)));
        File.WriteAllText(certificates.CaCertificatePath, certificates._ca.ExportCertificatePem());
        foreach (string node in nodes)
        {
            certificates.Issue(node, now.AddMinutes(-5), now.AddDays(30));
        }

        return certificates;
    }

    /// <summary>
    /// Writes a certificate and key for <paramref name="node"/> that is not signed by any CA (its own issuer), with the
    /// same extensions as an issued one: what an intruder without the cluster's CA can make.
    /// </summary>
    public static void CreateSelfSigned(string folder, string node)
    {
        Directory.CreateDirectory(folder);
        using RSA key = RSA.Create(2048);
        CertificateRequest request = NodeRequest(node, key);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(30));
        WritePem(Path.Combine(folder, node + ".crt"), Path.Combine(folder, node + ".key"), certificate, key);
    }

    public string CertificatePath(string node) => Path.Combine(Folder, node + ".crt");

    public string KeyPath(string node) => Path.Combine(Folder, node + ".key");

    public string PfxPath(string node) => Path.Combine(Folder, node + ".pfx");

    /// <summary>Issues a certificate for <paramref name="node"/> valid from <paramref name="notBefore"/> to <paramref name="notAfter"/> (PEM files).</summary>
    public void Issue(string node, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using RSA key = RSA.Create(2048);
        CertificateRequest request = NodeRequest(node, key);
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using X509Certificate2 certificate = request.Create(_ca, notBefore, notAfter, serial);
        WritePem(CertificatePath(node), KeyPath(node), certificate, key);
    }

    /// <summary>Writes <paramref name="node"/>'s certificate and key (issued before) as a PKCS#12 file protected by <paramref name="password"/>.</summary>
    public void ExportPfx(string node, string password)
    {
        using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(CertificatePath(node), KeyPath(node));
        File.WriteAllBytes(PfxPath(node), pem.Export(X509ContentType.Pkcs12, password));
        RestrictToOwner(PfxPath(node));
    }

    public void Dispose() => _ca.Dispose();

    private static CertificateRequest NodeRequest(string node, RSA key)
    {
        var request = new CertificateRequest($"CN={node}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false)); // server and client auth
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddDnsName(node);
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        return request;
    }

    private static void WritePem(string certificatePath, string keyPath, X509Certificate2 certificate, RSA key)
    {
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        RestrictToOwner(keyPath);
    }

    private static void RestrictToOwner(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
