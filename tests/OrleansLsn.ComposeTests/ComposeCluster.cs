using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Orleans.Connections.Security;
using Xunit;

[assembly: AssemblyFixture(typeof(OrleansLsn.ComposeTests.ComposeCluster))]

namespace OrleansLsn.ComposeTests;

/// <summary>
/// The running compose project (brought up and down by deploy/compose-e2e.sh) and a plain Orleans client of it on the
/// host: gateways from the membership table on the published primary port, mutual TLS with the client certificate from
/// the compose certs volume. Settings: <c>ORLEANSLSN_COMPOSE_PROJECT</c> (required), <c>ORLEANSLSN_COMPOSE_CERTS</c>
/// (a copy of the volume), the published ports (compose defaults) and <c>POSTGRES_PASSWORD</c>.
/// </summary>
public sealed class ComposeCluster : IAsyncLifetime
{
    private IHost? _client;

    public string Project { get; } = Require("ORLEANSLSN_COMPOSE_PROJECT");

    public string Primary { get; } = ConnectionString("PRIMARY_PORT", 15432);

    /// <summary>Each region's replica, as the compose file publishes them.</summary>
    public IReadOnlyDictionary<string, string> Replicas { get; } = new Dictionary<string, string>
    {
        ["eu-west"] = ConnectionString("REPLICA_EU_WEST_PORT", 15433),
        ["us-east"] = ConnectionString("REPLICA_US_EAST_PORT", 15434),
    };

    public IClusterClient Client => _client!.Services.GetRequiredService<IClusterClient>();

    public async ValueTask InitializeAsync()
    {
        string certs = Require("ORLEANSLSN_COMPOSE_CERTS");
        X509Certificate2 authority = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(certs, "ca.crt"));
        using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(Path.Combine(certs, "client.crt"), Path.Combine(certs, "client.key"));
        X509Certificate2 certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);

        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client => client
            .Configure<ClusterOptions>(o =>
            {
                o.ClusterId = Environment.GetEnvironmentVariable("ORLEANSLSN_CLUSTER_ID") ?? "orleanslsn";
                o.ServiceId = o.ClusterId;
            })
            .Configure<ClientMessagingOptions>(o =>
            {
                o.CancelRequestOnTimeout = true;
                o.ResponseTimeout = TimeSpan.FromSeconds(10);
            })
            .Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(2))
            .UseAdoNetClustering(o =>
            {
                o.Invariant = "Npgsql";
                o.ConnectionString = Primary;
            })
            .UseTls(certificate, tls =>
            {
                tls.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
                tls.RemoteCertificateValidation = (peer, _, _) => ChainsTo(peer, authority);
            }));
        _client = builder.Build();
        var started = Stopwatch.StartNew();
        await _client.StartAsync(TestContext.Current.CancellationToken);
        TestContext.Current.SendDiagnosticMessage($"ComposeCluster: client connected to project {Project} in {started.Elapsed.TotalSeconds:0.00} s");
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.StopAsync(CancellationToken.None);
            _client.Dispose();
        }

        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>The compose service whose container has the IP address of <paramref name="siloAddress"/> (<c>IP:PORT@GENERATION</c>).</summary>
    public async Task<string> ServiceOfSiloAsync(string siloAddress)
    {
        string ip = siloAddress.Split(':')[0];
        string ids = await DockerAsync("ps", "-q", "--filter", $"label=com.docker.compose.project={Project}");
        foreach (string id in ids.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string line = (await DockerAsync("inspect", "-f",
                "{{ index .Config.Labels \"com.docker.compose.service\" }} {{ range .NetworkSettings.Networks }}{{ .IPAddress }} {{ end }}", id)).Trim();
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Skip(1).Contains(ip))
            {
                return parts[0];
            }
        }

        throw new InvalidOperationException($"No container of compose project {Project} has the address {ip} (silo {siloAddress}).");
    }

    /// <summary><c>docker kill</c> of the service's container.</summary>
    public async Task KillServiceAsync(string service)
    {
        string id = (await DockerAsync("ps", "-q", "--filter", $"label=com.docker.compose.project={Project}", "--filter", $"label=com.docker.compose.service={service}")).Trim();
        Assert.False(string.IsNullOrEmpty(id), $"no running container for service {service}");
        await DockerAsync("kill", id);
    }

    public static async Task<string> DockerAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(deadline.Token);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"docker {string.Join(' ', args)} exited {process.ExitCode}: {await stderr}");
        }

        return await stdout;
    }

    private static bool ChainsTo(X509Certificate2? peer, X509Certificate2 authority)
    {
        if (peer is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(peer);
    }

    private static string ConnectionString(string portVariable, int defaultPort) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = int.TryParse(Environment.GetEnvironmentVariable(portVariable), out int port) ? port : defaultPort,
        Username = "postgres",
        Password = Environment.GetEnvironmentVariable("POSTGRES_PASSWORD") is { Length: > 0 } password ? password : "orleanslsn",
        Database = "postgres",
        Timeout = 10,
    }.ConnectionString;

    private static string Require(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{name} is not set: run these tests through deploy/compose-e2e.sh, which starts the compose project and sets it.");
}
