using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OrleansLsn.Silo.Local;

/// <summary>
/// A throw-away certificate authority and certificates signed by it, written as PEM files into a folder of a local
/// deployment (never into the repository): what the demo and the local cluster use so that TLS stays on.
/// </summary>
public sealed class DevCertificates
{
    private DevCertificates(string folder) => Folder = folder;

    public string Folder { get; }

    public string CaCertificatePath => Path.Combine(Folder, "ca.crt");

    public static DevCertificates Create(string folder, params string[] nodes)
    {
        Directory.CreateDirectory(folder);
        var certificates = new DevCertificates(folder);
        using RSA caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=OrleansLsn local CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, critical: false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(30));
        File.WriteAllText(certificates.CaCertificatePath, ca.ExportCertificatePem());
        foreach (string node in nodes)
        {
            certificates.Issue(ca, node, now);
        }

        return certificates;
    }

    public string CertificatePath(string node) => Path.Combine(Folder, node + ".crt");

    public string KeyPath(string node) => Path.Combine(Folder, node + ".key");

    private void Issue(X509Certificate2 ca, string node, DateTimeOffset now)
    {
        using RSA key = RSA.Create(2048);
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
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using X509Certificate2 certificate = request.Create(ca, now.AddMinutes(-5), now.AddDays(30), serial);
        File.WriteAllText(CertificatePath(node), certificate.ExportCertificatePem());
        File.WriteAllText(KeyPath(node), key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(KeyPath(node), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
