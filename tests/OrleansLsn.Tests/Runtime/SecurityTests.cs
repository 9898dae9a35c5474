using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class SecurityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 60_000)]
    public async Task WrongSecret_IsRefused_BeforeAnyGrainCode()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();

        ClusterConnectionRefusedException error = await Assert.ThrowsAsync<ClusterConnectionRefusedException>(
            () => silo.ConnectAsync(o => o.ClusterSecret = "not-the-cluster-secret-at-all"));

        Assert.Contains("secret", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, silo.Silo.ConnectedClients);
        Assert.Equal(0, silo.Silo.ActivationCount);
        // The silo logs after it has sent the refusal, so the client may see the refusal first.
        await Wait.UntilAsync(
            () => silo.Logs.Any(line => line.Contains("Refused the connection", StringComparison.Ordinal) && line.Contains("secret", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10),
            () => "a log line for the refused connection");
        Assert.DoesNotContain(silo.Logs, line => line.Contains(SiloHarness.Secret, StringComparison.Ordinal) || line.Contains("not-the-cluster-secret-at-all", StringComparison.Ordinal));
    }

    [Fact(Timeout = 60_000)]
    public async Task WrongClusterId_IsRefused()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();

        ClusterConnectionRefusedException error = await Assert.ThrowsAsync<ClusterConnectionRefusedException>(
            () => silo.ConnectAsync(o => o.ClusterId = "other"));

        Assert.Contains("other", error.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task ClientWithoutTheSecret_CannotCallAGrain_OverARawSocket()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using RawPeer peer = await RawPeer.ConnectAsync(silo.Silo.EndPoint.Port, Ct);

        // Skip the handshake and send a well-formed request straight away.
        await peer.ReadFrameAsync(Ct);
        await peer.SendFrameAsync(RawPeer.Request(0x1234, "k", 1, []), Ct);
        await peer.WaitForCloseAsync(Ct);

        Assert.Equal(0, silo.Silo.ActivationCount);
    }

    [Fact]
    public void ShortSecret_FailsOptionValidation()
    {
        var options = new ClientOptions { ClusterSecret = "short" };
        options.Gateways.Add("localhost:30000");

        OptionsValidationException error = Assert.Throws<OptionsValidationException>(() => new ClusterClient(Options.Create(options), new EmptyServices()));

        Assert.Contains("ClusterSecret", error.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task Tls_Works_AndAPlainClientIsRefused()
    {
        using X509Certificate2 certificate = CreateSelfSigned();
        await using SiloHarness silo = await SiloHarness.StartAsync(options: o => o.TlsCertificate = certificate);

        await using ClusterClient client = await silo.ConnectAsync(o =>
        {
            o.UseTls = true;
            o.TlsTargetHost = "localhost";
            o.TlsCertificateValidation = (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString();
        });
        Assert.Equal("over tls", await client.GetGrain<IEchoGrain>("t").Echo("over tls"));

        await Assert.ThrowsAnyAsync<GrainRuntimeException>(() => silo.ConnectAsync(o => o.ConnectTimeout = TimeSpan.FromSeconds(2)));
    }

    private static X509Certificate2 CreateSelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using X509Certificate2 created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);
    }
}
