using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Orleans.Connections.Security;
using OrleansLsn.Client;
using OrleansLsn.Silo.Local;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Security;

/// <summary>
/// Mutual TLS of a real silo process over real TCP: clients without a certificate of the cluster's CA, or with one
/// that has expired, are refused in the handshake (no grain call runs: the tracker's wait counter does not move, while
/// a correct client's one call moves it by exactly one), the silo logs the refusal, and a silo with a certificate of
/// another CA never becomes an active member.
/// </summary>
[Collection(TlsDeploymentCollection.Name)]
public sealed partial class TlsProcessTests(TlsDeploymentFixture fixture)
{
    private static readonly TimeSpan IntruderDeadline = TimeSpan.FromSeconds(8);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    // Far ahead of anything the primary writes: a wait for it always waits, and is counted when its timeout ends it.
    private static readonly Lsn Unreachable = new(0x7FFF_0000_0000_0000);

    public enum Intruder
    {
        NoCertificate,
        SelfSigned,
        OtherCa,
        Expired,
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private LocalDeployment Deployment => fixture.Deployment;

    [Theory]
    [InlineData(Intruder.NoCertificate)]
    [InlineData(Intruder.SelfSigned)]
    [InlineData(Intruder.OtherCa)]
    [InlineData(Intruder.Expired)]
    public async Task ClientWithoutAValidCertificateOfTheClustersCa_IsRefusedInTheHandshake_WhileTheRightClientIsServed(Intruder intruder)
    {
        string folder = Path.Combine(Deployment.Folder, "intruder-" + intruder + "-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(folder);
        long logStart = new FileInfo(fixture.Silo.LogPath).Length;
        double waitsBefore = await ReadWaitsAsync();
        var clientLog = new CapturedLog();

        // The intruder: its connection attempt and one grain call, which must never reach the tracker. Orleans' client
        // keeps retrying a refused gateway until its caller gives up, so the attempt ends with our deadline (or an error).
        string? thumbprint = PrepareIntruder(intruder, folder, out ClusterTlsOptions? tls);
        var sw = Stopwatch.StartNew();
        Exception refused = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            deadline.CancelAfter(IntruderDeadline);
            await using IAsyncDisposable connected = tls is null
                ? await ConnectWithoutCertificateAsync(clientLog, deadline.Token)
                : await ConnectAsync(tls, clientLog, deadline.Token);
            IClusterClient cluster = connected is OrleansLsnClient c ? c.Cluster : ((ClientHost)connected).Cluster;
            await cluster.GetGrain<ILsnTrackerGrain>(TlsDeploymentFixture.Region).RequestAndAwait(Unreachable, TimeSpan.FromMilliseconds(200), deadline.Token);
        });
        Ct.ThrowIfCancellationRequested();
        Assert.False(refused is Xunit.Sdk.XunitException, refused.Message);
        TestContext.Current.SendDiagnosticMessage($"{intruder}: not connected after {sw.Elapsed.TotalSeconds:0.0} s ({refused.GetType().Name}: {refused.Message})");

        // The silo says why, naming the certificate it refused (Orleans' own line when there was none).
        string expected = thumbprint is null ? "Authentication failed" : "TLS handshake refused: the peer's certificate";
        await Wait.UntilAsync(
            () => SiloLogSince(logStart).Any(l => l.Contains(expected, StringComparison.Ordinal) && (thumbprint is null || l.Contains(thumbprint, StringComparison.Ordinal))),
            TimeSpan.FromSeconds(15),
            () => $"a silo log line '{expected}' {thumbprint}; new lines:\n{string.Join('\n', SiloLogSince(logStart).TakeLast(20))}",
            Ct);
        if (intruder == Intruder.Expired)
        {
            Assert.Contains(SiloLogSince(logStart), l => l.Contains(thumbprint!, StringComparison.Ordinal) && l.Contains("NotTimeValid", StringComparison.Ordinal));
        }

        // Positive control, in the same test: the right client (PFX with a password file) is served, and its one call is
        // the only one the tracker counted.
        ClusterTlsOptions right = RightClient(folder);
        await using (OrleansLsnClient client = await ConnectAsync(right, clientLog, Ct))
        {
            LsnWaitResult result = await client.Cluster.GetGrain<ILsnTrackerGrain>(TlsDeploymentFixture.Region).RequestAndAwait(Unreachable, TimeSpan.FromMilliseconds(200), Ct);
            Assert.Equal(LsnWaitOutcome.TimedOut, result.Outcome);
        }

        double waitsAfter = 0;
        await Wait.UntilAsync(async () => (waitsAfter = await ReadWaitsAsync()) >= waitsBefore + 1, TimeSpan.FromSeconds(10), () => $"the right client's wait counted: {waitsBefore} -> {waitsAfter}", Ct);
        Assert.Equal(waitsBefore + 1, waitsAfter);

        // Nothing any process printed or logged holds key material or the password.
        new SecretScan().AddKeyMaterial(Deployment.Folder).AssertNoneIn(
            [
                (fixture.Silo.Name, ReadLines(fixture.Silo.LogPath)),
                ("the clients", clientLog.Lines),
                ("the intruder's exception", refused.ToString().Split('\n')),
            ],
            minimumSecrets: 40);
    }

    [Fact]
    public async Task ClientConnect_WrongClusterIdOrCa_FailsWithinItsBound_SayingWhatItFoundAndWhichCertificateWasRefused()
    {
        string folder = Path.Combine(Deployment.Folder, "connect-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(folder);
        ClusterTlsOptions right = RightClient(folder);

        // Connected, the client logs no dump of Orleans' options unless asked to (OrleansLsn:Client:LogOptions).
        var quiet = new CapturedLog();
        var verbose = new CapturedLog();
        await using (OrleansLsnClient client = await ConnectAsync(right, quiet, Ct))
        {
            await client.Cluster.GetGrain<ILsnTrackerGrain>(TlsDeploymentFixture.Region).GetLastReplay();
        }

        await using (OrleansLsnClient client = await OrleansLsnClient.ConnectAsync(
            o =>
            {
                o.ClusterId = LocalDeployment.ClusterId;
                o.ServiceId = LocalDeployment.ClusterId;
                o.MembershipConnectionString = Deployment.MembershipConnectionString;
                o.Tls = right;
                o.Client.LogOptions = true;
            },
            host => host.Logging.ClearProviders().AddProvider(verbose).SetMinimumLevel(LogLevel.Information),
            Ct))
        {
            await client.Cluster.GetGrain<ILsnTrackerGrain>(TlsDeploymentFixture.Region).GetLastReplay();
        }

        Assert.DoesNotContain(quiet.Lines, l => l.Contains("Orleans.ClientOptionsLogger", StringComparison.Ordinal));
        Assert.True(
            verbose.Lines.Any(l => l.Contains("Orleans.ClientOptionsLogger", StringComparison.Ordinal) && l.Contains("Configuration Orleans.Configuration.ClusterOptions", StringComparison.Ordinal)),
            "with LogOptions, no dump of Orleans' options:\n" + string.Join("\n", verbose.Lines));

        // A wrong cluster id (the README once said 'orleanslsn'), membership read as the superuser: the ids that do have
        // gateways are named.
        var sw = Stopwatch.StartNew();
        ClusterConnectException wrongId = await Assert.ThrowsAsync<ClusterConnectException>(
            () => ConnectAsync(right, Deployment.MembershipConnectionString, "orleanslsn", TimeSpan.FromSeconds(2)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"gave up after {sw.Elapsed} with a 2 s connect timeout");
        Assert.Contains("Orleans cluster 'orleanslsn'", wrongId.Message, StringComparison.Ordinal);
        Assert.Contains("lists no active gateway for cluster id 'orleanslsn'", wrongId.Message, StringComparison.Ordinal);
        Assert.Contains($"cluster ids with active gateways there: '{LocalDeployment.ClusterId}' (1)", wrongId.Message, StringComparison.Ordinal);

        // The same as the client role, which may call the gateway function only.
        ClusterConnectException asClient = await Assert.ThrowsAsync<ClusterConnectException>(
            () => ConnectAsync(right, Deployment.ClientConnectionString, "orleanslsn", TimeSpan.FromSeconds(2)));
        Assert.Contains("as orleanslsn_client", asClient.Message, StringComparison.Ordinal);
        Assert.Contains("may not list other clusters' ids", asClient.Message, StringComparison.Ordinal);

        // A CA that did not sign the silos' certificates: this client refuses the gateway's, at once, and says so.
        using DevCertificates other = DevCertificates.Create(Path.Combine(folder, "other"), "client");
        var wrongCa = new ClusterTlsOptions
        {
            CertificatePath = Deployment.Certificates.CertificatePath("client"),
            KeyPath = Deployment.Certificates.KeyPath("client"),
            CaCertificatePath = other.CaCertificatePath,
        };
        sw.Restart();
        ClusterConnectException refusedByClient = await Assert.ThrowsAsync<ClusterConnectException>(
            () => ConnectAsync(wrongCa, Deployment.MembershipConnectionString, LocalDeployment.ClusterId, TimeSpan.FromSeconds(30)));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"a refused certificate was retried for {sw.Elapsed}: {refusedByClient}");
        Assert.Contains("this client refused the gateway's certificate (subject 'CN=silo', issuer 'CN=OrleansLsn local CA'", refusedByClient.Message, StringComparison.Ordinal);
        Assert.Contains(other.CaCertificatePath, refusedByClient.Message, StringComparison.Ordinal);

        // A client certificate of another CA, while the client trusts the cluster's: the gateway refuses it.
        var foreignClient = new ClusterTlsOptions
        {
            CertificatePath = other.CertificatePath("client"),
            KeyPath = other.KeyPath("client"),
            CaCertificatePath = Deployment.Certificates.CaCertificatePath,
        };
        ClusterConnectException refusedByGateway = await Assert.ThrowsAsync<ClusterConnectException>(
            () => ConnectAsync(foreignClient, Deployment.MembershipConnectionString, LocalDeployment.ClusterId, TimeSpan.FromSeconds(5)));
        TestContext.Current.SendDiagnosticMessage("refused by the gateway: " + refusedByGateway.Message);
        Assert.Contains("the gateway refused this client's certificate", refusedByGateway.Message, StringComparison.Ordinal);
        Assert.Contains(other.CertificatePath("client"), refusedByGateway.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SiloWithACertificateOfAnotherCa_NeverBecomesAnActiveMember()
    {
        string folder = Path.Combine(Deployment.Folder, "foreign-silo-" + Guid.NewGuid().ToString("N")[..6]);
        using DevCertificates foreign = DevCertificates.Create(folder, "silo");
        string thumbprint = Thumbprint(foreign.CertificatePath("silo"));
        long logStart = new FileInfo(fixture.Silo.LogPath).Length;
        SiloProcess intruder = Deployment.StartSilo(TlsDeploymentFixture.Region, new Dictionary<string, string>
        {
            ["OrleansLsn:Tls:CertificatePath"] = foreign.CertificatePath("silo"),
            ["OrleansLsn:Tls:KeyPath"] = foreign.KeyPath("silo"),
            ["OrleansLsn:Tls:CaCertificatePath"] = foreign.CaCertificatePath,
        });
        try
        {
            await using NpgsqlConnection primary = new(Deployment.MembershipConnectionString);
            await primary.OpenAsync(Ct);

            // Watch the membership table until the intruder gives up (exits) or for 40 s: its row may appear (Joining),
            // never as Active (3); the good silo refuses its certificate and stays the only active member.
            var sw = Stopwatch.StartNew();
            var statuses = new SortedSet<int>();
            while (!intruder.HasExited && sw.Elapsed < TimeSpan.FromSeconds(40))
            {
                await using (var cmd = new NpgsqlCommand("select status from orleanslsn_membership_silo where port = $1", primary))
                {
                    cmd.Parameters.AddWithValue(intruder.SiloPort);
                    await using NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(Ct);
                    while (await reader.ReadAsync(Ct))
                    {
                        statuses.Add(reader.GetInt32(0));
                    }
                }

                Assert.DoesNotContain(3, statuses);
                Assert.False(await intruder.IsHealthyAsync(Ct), "the foreign silo reports itself healthy (an active member)");
                await Task.Delay(200, Ct);
            }

            TestContext.Current.SendDiagnosticMessage($"foreign-CA silo: statuses seen {string.Join(",", statuses)}; {(intruder.HasExited ? "exited" : "still running")} after {sw.Elapsed.TotalSeconds:0.0} s\n{intruder.ReadLogTail(15)}");
            Assert.Contains(SiloLogSince(logStart), l => l.Contains("TLS handshake refused", StringComparison.Ordinal) && l.Contains(thumbprint, StringComparison.Ordinal));
            Assert.Contains(ReadLines(intruder.LogPath), l => l.Contains("TLS handshake refused", StringComparison.Ordinal) || l.Contains("Authentication failed", StringComparison.Ordinal));
            await using (var cmd = new NpgsqlCommand("select count(*) from orleanslsn_membership_silo where status = 3", primary))
            {
                Assert.Equal(1L, (long)(await cmd.ExecuteScalarAsync(Ct))!);
            }

            Assert.True(await fixture.Silo.IsHealthyAsync(Ct), "the good silo is no longer healthy");
            await intruder.StopAsync(TimeSpan.FromSeconds(15));
            new SecretScan().AddKeyMaterial(Deployment.Folder).AssertNoneIn(
                [(fixture.Silo.Name, ReadLines(fixture.Silo.LogPath)), (intruder.Name, ReadLines(intruder.LogPath))],
                minimumSecrets: 40);
        }
        finally
        {
            await intruder.StopAsync(TimeSpan.FromSeconds(15));
        }
    }

    /// <summary>Writes the intruder's certificate into <paramref name="folder"/>; returns its thumbprint (null: no certificate).</summary>
    private string? PrepareIntruder(Intruder intruder, string folder, out ClusterTlsOptions? tls)
    {
        string certificate;
        string key;
        switch (intruder)
        {
            case Intruder.NoCertificate:
                tls = null;
                return null;
            case Intruder.SelfSigned:
                DevCertificates.CreateSelfSigned(folder, "client");
                certificate = Path.Combine(folder, "client.crt");
                key = Path.Combine(folder, "client.key");
                break;
            case Intruder.OtherCa:
                using (DevCertificates other = DevCertificates.Create(folder, "client"))
                {
                    certificate = other.CertificatePath("client");
                    key = other.KeyPath("client");
                }

                break;
            case Intruder.Expired:
                // Signed by the cluster's own CA: only the validity period is wrong.
                Deployment.Certificates.Issue("expired-client", DateTimeOffset.UtcNow.AddDays(-3), DateTimeOffset.UtcNow.AddDays(-1));
                certificate = Deployment.Certificates.CertificatePath("expired-client");
                key = Deployment.Certificates.KeyPath("expired-client");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(intruder));
        }

        // The intruder trusts the cluster's CA for the silo's certificate: the only problem is its own.
        tls = new ClusterTlsOptions { CertificatePath = certificate, KeyPath = key, CaCertificatePath = Deployment.Certificates.CaCertificatePath };
        return Thumbprint(certificate);
    }

    private ClusterTlsOptions RightClient(string folder)
    {
        string password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        Deployment.Certificates.ExportPfx("client", password);
        string passwordFile = Path.Combine(folder, "client.pfx.password");
        File.WriteAllText(passwordFile, password + "\n");
        return new ClusterTlsOptions
        {
            CertificatePath = Deployment.Certificates.PfxPath("client"),
            PasswordFile = passwordFile,
            CaCertificatePath = Deployment.Certificates.CaCertificatePath,
        };
    }

    private Task<OrleansLsnClient> ConnectAsync(ClusterTlsOptions tls, CapturedLog log, CancellationToken cancellationToken) =>
        OrleansLsnClient.ConnectAsync(
            o =>
            {
                o.ClusterId = LocalDeployment.ClusterId;
                o.ServiceId = LocalDeployment.ClusterId;
                o.MembershipConnectionString = Deployment.MembershipConnectionString;
                o.Tls = tls;
            },
            host => host.Logging.ClearProviders().AddProvider(log).SetMinimumLevel(LogLevel.Debug),
            cancellationToken);

    private static async Task<OrleansLsnClient> ConnectAsync(ClusterTlsOptions tls, string membership, string clusterId, TimeSpan connectTimeout) =>
        await OrleansLsnClient.ConnectAsync(
            o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = LocalDeployment.ClusterId;
                o.MembershipConnectionString = membership;
                o.Tls = tls;
                o.Client.ConnectTimeout = connectTimeout;
            },
            null,
            Ct);

    /// <summary>A plain Orleans client speaking TLS but presenting no certificate (and accepting any server's).</summary>
    private async Task<ClientHost> ConnectWithoutCertificateAsync(CapturedLog log, CancellationToken cancellationToken)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddProvider(log).SetMinimumLevel(LogLevel.Debug);
        builder.UseOrleansClient(client =>
        {
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = Deployment.MembershipConnectionString;
            });
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = LocalDeployment.ClusterId;
                o.ServiceId = LocalDeployment.ClusterId;
            });
            client.UseTls(tls =>
            {
                tls.ClientCertificateMode = RemoteCertificateMode.NoCertificate;
                tls.RemoteCertificateMode = RemoteCertificateMode.AllowCertificate;
                tls.RemoteCertificateValidation = (_, _, _) => true;
            });
        });
        IHost host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        return new ClientHost(host);
    }

    /// <summary>The sum over outcomes of the silo's <c>orleanslsn.tracker.waits</c> counter, from <c>/metrics</c>.</summary>
    private async Task<double> ReadWaitsAsync()
    {
        string metrics = await Http.GetStringAsync(new Uri($"http://127.0.0.1:{fixture.Silo.HttpPort}/metrics"), Ct);
        double sum = 0;
        foreach (Match m in WaitsLine().Matches(metrics))
        {
            sum += double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }

        return sum;
    }

    private List<string> SiloLogSince(long offset)
    {
        using var stream = new FileStream(fixture.Silo.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        return [.. reader.ReadToEnd().Split('\n')];
    }

    internal static List<string> ReadLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return [.. reader.ReadToEnd().Split('\n')];
    }

    private static string Thumbprint(string certificatePath)
    {
        using X509Certificate2 certificate = X509CertificateLoader.LoadCertificateFromFile(certificatePath);
        return certificate.Thumbprint;
    }

    [GeneratedRegex(@"^orleanslsn_tracker_waits(?:_total)?\{[^}]*\}\s+([0-9.eE+-]+)", RegexOptions.Multiline)]
    private static partial Regex WaitsLine();

    private sealed class ClientHost(IHost host) : IAsyncDisposable
    {
        public IClusterClient Cluster => host.Services.GetRequiredService<IClusterClient>();

        public async ValueTask DisposeAsync()
        {
            try
            {
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await host.StopAsync(stop.Token);
            }
            finally
            {
                host.Dispose();
            }
        }
    }
}
