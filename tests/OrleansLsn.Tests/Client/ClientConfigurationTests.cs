using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Messaging;
using Orleans.Runtime.Membership;
using OrleansLsn.Client;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// <c>UseOrleansLsnClient</c> reads the silos' <c>OrleansLsn</c> section into an ordinary Orleans client: the resolved
/// Orleans options are inspected; every problem is named by its key, never with a connection string's value.
/// </summary>
public sealed class ClientConfigurationTests(PostgresFixture postgres)
{
    private const string Password = "s3cret-Pa55word";
    private const string Primary = $"Host=10.0.0.1;Port=5432;Username=app;Password={Password}";
    private const string Membership = $"Host=10.0.0.2;Port=5433;Username=orleans;Password={Password}";

    private static readonly ClusterTlsOptions NoTls = new() { Mode = ClusterTlsMode.Disabled };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What a silo's section holds; the client reads its part and ignores the rest.</summary>
    private static Dictionary<string, string?> SiloSection() => new()
    {
        ["OrleansLsn:Region"] = "eu-west",
        ["OrleansLsn:PrimaryConnectionString"] = Primary,
        ["OrleansLsn:ReplicaConnectionString"] = $"Host=10.0.0.3;Password={Password}",
        ["OrleansLsn:Replication:Slots:0:Name"] = "orders",
        ["OrleansLsn:Replication:Slots:0:Publication"] = "orders_pub",
        // These tests are about everything but TLS (see the TLS tests below).
        ["OrleansLsn:Tls:Mode"] = "Disabled",
    };

    [Fact]
    public void Section_ConfiguresClusterMembershipGatewayRefreshAndMessaging()
    {
        Dictionary<string, string?> settings = SiloSection();
        settings["OrleansLsn:ClusterId"] = "prod-cluster";
        settings["OrleansLsn:ServiceId"] = "prod-service";
        settings["OrleansLsn:MembershipConnectionString"] = Membership;
        settings["OrleansLsn:Client:GatewayListRefreshPeriod"] = "00:00:02";
        settings["OrleansLsn:Client:ResponseTimeout"] = "00:00:07";
        using IHost host = BuildHost(settings);

        ClusterOptions cluster = host.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;
        Assert.Equal("prod-cluster", cluster.ClusterId);
        Assert.Equal("prod-service", cluster.ServiceId);
        AdoNetClusteringClientOptions membership = host.Services.GetRequiredService<IOptions<AdoNetClusteringClientOptions>>().Value;
        Assert.Equal("Npgsql", membership.Invariant);
        Assert.Equal(Membership, membership.ConnectionString);
        Assert.Equal(TimeSpan.FromSeconds(2), host.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.GatewayListRefreshPeriod);
        ClientMessagingOptions messaging = host.Services.GetRequiredService<IOptions<ClientMessagingOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(7), messaging.ResponseTimeout);
        Assert.True(messaging.CancelRequestOnTimeout);
        Assert.IsType<AdoNetGatewayListProvider>(host.Services.GetRequiredService<IGatewayListProvider>());
    }

    [Fact]
    public void Defaults_AndMembershipFallsBackToThePrimary()
    {
        using IHost host = BuildHost(SiloSection());

        ClusterOptions cluster = host.Services.GetRequiredService<IOptions<ClusterOptions>>().Value;
        Assert.Equal("orleanslsn", cluster.ClusterId);
        Assert.Equal("orleanslsn", cluster.ServiceId);
        Assert.Equal(Primary, host.Services.GetRequiredService<IOptions<AdoNetClusteringClientOptions>>().Value.ConnectionString);
        Assert.Equal(TimeSpan.FromSeconds(5), host.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.GatewayListRefreshPeriod);
        ClientMessagingOptions messaging = host.Services.GetRequiredService<IOptions<ClientMessagingOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(30), messaging.ResponseTimeout);
        Assert.True(messaging.CancelRequestOnTimeout);
    }

    [Fact]
    public void EveryProblem_IsReportedTogether_WithItsKey_AndNoSecret()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["OrleansLsn:ClusterId"] = "",
            ["OrleansLsn:ServiceId"] = " svc ",
            ["OrleansLsn:MembershipConnectionString"] = $"Host=db;Password={Password};Bogus Key=1",
            ["OrleansLsn:Client:GatewayListRefreshPeriod"] = "00:00:00",
            ["OrleansLsn:Client:ResponseTimeout"] = "-00:00:01",
        });

        ValidateOptionsResult result = new OrleansLsnClientOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        string[] failures = [.. result.Failures];
        Assert.Equal(5, failures.Length);
        Assert.Contains("OrleansLsn:ClusterId is required.", failures);
        Assert.Contains(failures, f => f.StartsWith("OrleansLsn:ServiceId has leading or trailing white space", StringComparison.Ordinal));
        Assert.Contains("OrleansLsn:MembershipConnectionString is not a valid PostgreSQL connection string.", failures);
        Assert.Contains(failures, f => f.StartsWith("OrleansLsn:Client:GatewayListRefreshPeriod must be between", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("OrleansLsn:Client:ResponseTimeout must be between", StringComparison.Ordinal));
        Assert.DoesNotContain(failures, f => f.Contains(Password, StringComparison.Ordinal));
    }

    [Fact]
    public void Membership_IsRequired_AndAnInvalidPrimaryIsNamedAsTheFallback()
    {
        ValidateOptionsResult missing = new OrleansLsnClientOptionsValidator().Validate(null, new OrleansLsnClientOptions());
        Assert.StartsWith("OrleansLsn:MembershipConnectionString is required", Assert.Single(missing.Failures!), StringComparison.Ordinal);

        var noHost = new OrleansLsnClientOptions { PrimaryConnectionString = $"Username=app;Password={Password}" };
        string failure = Assert.Single(new OrleansLsnClientOptionsValidator().Validate(null, noHost).Failures!);
        Assert.StartsWith("OrleansLsn:PrimaryConnectionString (used for membership", failure, StringComparison.Ordinal);
        Assert.EndsWith("has no Host.", failure, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, failure, StringComparison.Ordinal);

        Assert.True(new OrleansLsnClientOptionsValidator().Validate(null, new OrleansLsnClientOptions { MembershipConnectionString = Membership }).Succeeded);
    }

    [Fact]
    public async Task ClientWithAWrongConfiguration_RefusesToStart_NamingEveryProblem()
    {
        using IHost host = BuildHost(new Dictionary<string, string?>
        {
            ["OrleansLsn:ClusterId"] = " ",
            ["OrleansLsn:PrimaryConnectionString"] = $"Host=;Password={Password}",
        });
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Contains("OrleansLsn:ClusterId is required.", error.Failures);
        Assert.Contains(error.Failures, f => f.StartsWith("OrleansLsn:PrimaryConnectionString (used for membership", StringComparison.Ordinal));
        Assert.DoesNotContain(Password, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UseOrleansLsnClient_Twice_RegistersOnce()
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(SiloSection());
        int configured = 0;
        builder.UseOrleansLsnClient(c => configured++).UseOrleansLsnClient(c => c.UseOrleansLsnClient(o => o.ClusterId = "ignored"));
        builder.UseOrleansClient(c => c.UseOrleansLsnClient());
        Assert.Equal(1, configured);
        Assert.Single(builder.Services, d => d.ImplementationType == typeof(OrleansLsnClientOptionsValidator));
        Assert.Single(builder.Services, d => d.ServiceType == typeof(OrleansLsnClientSecretFiles));
        Assert.Single(builder.Services, d => d.ServiceType == typeof(IGatewayListProvider));
        using IHost host = builder.Build();
        Assert.Equal("orleanslsn", host.Services.GetRequiredService<IOptions<ClusterOptions>>().Value.ClusterId);
    }

    [Fact]
    public void OneCallForm_BuildsTheSameClient_FromItsArguments()
    {
        using IHost host = OrleansLsnClient.Build(
            o =>
            {
                o.MembershipConnectionString = Membership;
                o.ClusterId = "script-cluster";
                o.Tls.Mode = ClusterTlsMode.Disabled;
            },
            null);
        Assert.Equal("script-cluster", host.Services.GetRequiredService<IOptions<ClusterOptions>>().Value.ClusterId);
        Assert.Equal("orleanslsn", host.Services.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId);
        Assert.Equal(Membership, host.Services.GetRequiredService<IOptions<AdoNetClusteringClientOptions>>().Value.ConnectionString);
        Assert.True(host.Services.GetRequiredService<IOptions<ClientMessagingOptions>>().Value.CancelRequestOnTimeout);
    }

    [Fact]
    public async Task ConnectAsync_WithInvalidArguments_FailsBeforeConnecting_NamingTheKey()
    {
        var empty = await Assert.ThrowsAsync<OptionsValidationException>(() => OrleansLsnClient.ConnectAsync("", NoTls, cancellationToken: Ct));
        Assert.StartsWith("OrleansLsn:MembershipConnectionString is required", Assert.Single(empty.Failures), StringComparison.Ordinal);

        var badId = await Assert.ThrowsAsync<OptionsValidationException>(() => OrleansLsnClient.ConnectAsync(Membership, NoTls, clusterId: "", cancellationToken: Ct));
        Assert.Equal("OrleansLsn:ClusterId is required.", Assert.Single(badId.Failures));
        Assert.DoesNotContain(Password, badId.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TlsIsRequiredByDefault_AClientWithoutItsCertificateDoesNotStart_NamingTheKeys()
    {
        Dictionary<string, string?> settings = SiloSection();
        settings.Remove("OrleansLsn:Tls:Mode");
        using IHost host = BuildHost(settings);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Contains(error.Failures, f => f.StartsWith("OrleansLsn:Tls:CertificatePath is required", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("OrleansLsn:Tls:CaCertificatePath is required", StringComparison.Ordinal));

        settings["OrleansLsn:Tls:CertificatePath"] = "/nonexistent/client.crt";
        settings["OrleansLsn:Tls:KeyPath"] = "/nonexistent/client.key";
        settings["OrleansLsn:Tls:CaCertificatePath"] = "/nonexistent/ca.crt";
        using IHost missing = BuildHost(settings);
        var missingError = await Assert.ThrowsAsync<OptionsValidationException>(() => missing.StartAsync(Ct));
        Assert.Contains(missingError.Failures, f => f.StartsWith("OrleansLsn:Tls:CertificatePath: file '/nonexistent/client.crt' does not exist", StringComparison.Ordinal));
    }

    [Fact]
    public void TlsWithTheClustersCertificates_IsConfigured_AndTrustsOnlyThatCa()
    {
        string folder = Path.Combine(Path.GetTempPath(), "orleanslsn-client-tls-" + Guid.NewGuid().ToString("N")[..8]);
        string other = folder + "-other";
        try
        {
            using OrleansLsn.Silo.Local.DevCertificates ours = OrleansLsn.Silo.Local.DevCertificates.Create(folder, "client", "silo");
            using OrleansLsn.Silo.Local.DevCertificates foreign = OrleansLsn.Silo.Local.DevCertificates.Create(other, "silo");
            Dictionary<string, string?> settings = SiloSection();
            settings["OrleansLsn:Tls:Mode"] = "Required";
            settings["OrleansLsn:Tls:CertificatePath"] = ours.CertificatePath("client");
            settings["OrleansLsn:Tls:KeyPath"] = ours.KeyPath("client");
            settings["OrleansLsn:Tls:CaCertificatePath"] = ours.CaCertificatePath;
            using IHost host = BuildHost(settings);
            ClusterCertificates certificates = host.Services.GetRequiredService<ClusterCertificates>();
            Assert.True(certificates.Certificate.HasPrivateKey);
            using var silo = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(ours.CertificatePath("silo"));
            using var foreignSilo = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(foreign.CertificatePath("silo"));
            Assert.True(certificates.IsTrusted(silo));
            Assert.False(certificates.IsTrusted(foreignSilo));
            Assert.False(certificates.IsTrusted(null));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
            Directory.Delete(other, recursive: true);
        }
    }

    [Fact]
    public void ConnectionStringFiles_AreReadOnce_WithoutTheirTrailingNewline()
    {
        using var secrets = new SecretFolder();
        Dictionary<string, string?> settings = SiloSection();
        settings.Remove("OrleansLsn:PrimaryConnectionString");
        settings["OrleansLsn:PrimaryConnectionStringFile"] = secrets.Write("primary", Primary + "\n");
        settings["OrleansLsn:MembershipConnectionStringFile"] = secrets.Write("membership", Membership + "\r\n");
        using IHost host = BuildHost(settings);

        OrleansLsnClientOptions options = host.Services.GetRequiredService<IOptions<OrleansLsnClientOptions>>().Value;
        Assert.Equal(Primary, options.PrimaryConnectionString);
        Assert.Equal(Membership, options.MembershipConnectionString);
        Assert.Equal(Membership, host.Services.GetRequiredService<IOptions<AdoNetClusteringClientOptions>>().Value.ConnectionString);

        // Read once, when the options were built: a changed file changes nothing afterwards.
        File.WriteAllText(settings["OrleansLsn:MembershipConnectionStringFile"]!, "Host=changed");
        Assert.Equal(Membership, host.Services.GetRequiredService<IOptions<AdoNetClusteringClientOptions>>().Value.ConnectionString);
    }

    [Fact]
    public void MembershipFromAFile_FallsBackToThePrimaryFromAFile()
    {
        using var secrets = new SecretFolder();
        Dictionary<string, string?> settings = SiloSection();
        settings.Remove("OrleansLsn:PrimaryConnectionString");
        settings["OrleansLsn:PrimaryConnectionStringFile"] = secrets.Write("primary", Primary);
        using IHost host = BuildHost(settings);
        Assert.Equal(Primary, host.Services.GetRequiredService<IOptions<AdoNetClusteringClientOptions>>().Value.ConnectionString);
    }

    [Fact]
    public async Task ConnectionStringFiles_BothSetMissingOrEmpty_StopTheClient_NamingKeyAndPath_NeverTheSecret()
    {
        using var secrets = new SecretFolder();
        string missing = Path.Combine(secrets.Path, "no-such-file");
        Dictionary<string, string?> settings = SiloSection();
        settings["OrleansLsn:PrimaryConnectionStringFile"] = secrets.Write("primary", Primary);
        settings["OrleansLsn:MembershipConnectionStringFile"] = missing;
        using IHost host = BuildHost(settings);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Contains("OrleansLsn:PrimaryConnectionString and OrleansLsn:PrimaryConnectionStringFile are both set; set only one of them.", error.Failures);
        Assert.Contains($"OrleansLsn:MembershipConnectionStringFile: file '{missing}' does not exist.", error.Failures);
        Assert.DoesNotContain(Password, error.Message, StringComparison.Ordinal);

        settings.Remove("OrleansLsn:PrimaryConnectionString");
        settings["OrleansLsn:PrimaryConnectionStringFile"] = secrets.Write("empty", "\n");
        settings["OrleansLsn:MembershipConnectionStringFile"] = secrets.Path;
        using IHost empty = BuildHost(settings);
        var emptyError = await Assert.ThrowsAsync<OptionsValidationException>(() => empty.StartAsync(Ct));
        Assert.Contains($"OrleansLsn:PrimaryConnectionStringFile: file '{secrets.Path}/empty' is empty.", emptyError.Failures);
        Assert.Contains(emptyError.Failures, f => f.StartsWith($"OrleansLsn:MembershipConnectionStringFile: file '{secrets.Path}' cannot be read", StringComparison.Ordinal));
    }

    [Fact]
    public void TlsPasswordAndPasswordFile_BothSet_IsAnError_AndAPasswordFileAloneLoadsThePfx()
    {
        using var secrets = new SecretFolder();
        const string PfxPassword = "pfx-Pa55word-client";
        using OrleansLsn.Silo.Local.DevCertificates certificates = OrleansLsn.Silo.Local.DevCertificates.Create(Path.Combine(secrets.Path, "certs"), "client");
        certificates.ExportPfx("client", PfxPassword);
        var tls = new ClusterTlsOptions
        {
            CertificatePath = certificates.PfxPath("client"),
            CaCertificatePath = certificates.CaCertificatePath,
            Password = PfxPassword,
            PasswordFile = secrets.Write("pfx.password", PfxPassword + "\n"),
        };

        var failures = new List<string>();
        Assert.Null(ClusterCertificates.TryLoad(tls, "OrleansLsn:Tls:", failures));
        Assert.Equal("OrleansLsn:Tls:Password and OrleansLsn:Tls:PasswordFile are both set; set only one of them.", Assert.Single(failures));

        tls.Password = null;
        failures.Clear();
        using (ClusterCertificates? loaded = ClusterCertificates.TryLoad(tls, "OrleansLsn:Tls:", failures))
        {
            Assert.Empty(failures);
            Assert.True(loaded!.Certificate.HasPrivateKey);
        }

        tls.PasswordFile = secrets.Write("empty.password", "");
        Assert.Null(ClusterCertificates.TryLoad(tls, "OrleansLsn:Tls:", failures));
        Assert.Equal($"OrleansLsn:Tls:PasswordFile: file '{tls.PasswordFile}' is empty.", Assert.Single(failures));
        Assert.DoesNotContain(failures, f => f.Contains(PfxPassword, StringComparison.Ordinal));
    }

    [Fact]
    public async Task NpgsqlInvariant_LoadsNpgsql_WithoutARegisteredDbProviderFactory()
    {
        // Orleans' ADO.NET provider loads the "Npgsql" assembly and reads NpgsqlFactory.Instance itself; nothing in
        // OrleansLsn registers a DbProviderFactory. Against a database that does not exist, initialising the gateway list
        // gets PostgreSQL's own answer, so the invariant resolved to a working Npgsql connection.
        var missingDatabase = new NpgsqlConnectionStringBuilder(postgres.PrimaryConnectionString) { Database = "orleanslsn_no_such_database" };
        using IHost host = OrleansLsnClient.Build(
            o =>
            {
                o.MembershipConnectionString = missingDatabase.ConnectionString;
                o.Tls.Mode = ClusterTlsMode.Disabled;
            },
            null);
        IGatewayListProvider provider = host.Services.GetRequiredService<IGatewayListProvider>();

        Exception error = await Assert.ThrowsAnyAsync<Exception>(() => provider.InitializeGatewayListProvider().WaitAsync(TimeSpan.FromSeconds(30), Ct));
        PostgresException? postgresError = Flatten(error).OfType<PostgresException>().FirstOrDefault();
        Assert.True(postgresError is not null, $"expected PostgreSQL's answer, got {error}");
        Assert.Equal(PostgresErrorCodes.InvalidCatalogName, postgresError.SqlState);
    }

    [Fact]
    public async Task AMissingConnectionStringFile_IsTheOnlyProblemReported_NotAlsoItsKeyAsRequired()
    {
        using var secrets = new SecretFolder();
        string missing = Path.Combine(secrets.Path, "no-such-file");
        Dictionary<string, string?> settings = SiloSection();
        settings.Remove("OrleansLsn:PrimaryConnectionString");
        settings["OrleansLsn:MembershipConnectionStringFile"] = missing;
        using IHost host = BuildHost(settings);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Ct));
        Assert.Equal($"OrleansLsn:MembershipConnectionStringFile: file '{missing}' does not exist.", Assert.Single(error.Failures));

        // Without the file key, the key itself is what is missing.
        settings.Remove("OrleansLsn:MembershipConnectionStringFile");
        using IHost none = BuildHost(settings);
        var required = await Assert.ThrowsAsync<OptionsValidationException>(() => none.StartAsync(Ct));
        Assert.StartsWith("OrleansLsn:MembershipConnectionString is required", Assert.Single(required.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public void PemCertificateWithoutKeyPath_SaysTheKeyIsMissing_AndOneWithItsKeyInsideLoads()
    {
        using var secrets = new SecretFolder();
        using OrleansLsn.Silo.Local.DevCertificates certificates = OrleansLsn.Silo.Local.DevCertificates.Create(Path.Combine(secrets.Path, "certs"), "client");
        var tls = new ClusterTlsOptions { CertificatePath = certificates.CertificatePath("client"), CaCertificatePath = certificates.CaCertificatePath };
        var failures = new List<string>();
        Assert.Null(ClusterCertificates.TryLoad(tls, "OrleansLsn:Tls:", failures));
        string failure = Assert.Single(failures);
        Assert.StartsWith($"OrleansLsn:Tls:CertificatePath: '{tls.CertificatePath}' is a PEM certificate without its private key; give the key's PEM file in OrleansLsn:Tls:KeyPath", failure, StringComparison.Ordinal);
        Assert.DoesNotContain("ASN1", failure, StringComparison.Ordinal);

        // The certificate and its key in one PEM file need no KeyPath.
        string combined = Path.Combine(secrets.Path, "client-with-key.pem");
        File.WriteAllText(combined, File.ReadAllText(certificates.CertificatePath("client")).TrimEnd() + "\n" + File.ReadAllText(certificates.KeyPath("client")));
        failures.Clear();
        using ClusterCertificates? loaded = ClusterCertificates.TryLoad(new ClusterTlsOptions { CertificatePath = combined, CaCertificatePath = certificates.CaCertificatePath }, "OrleansLsn:Tls:", failures);
        Assert.True(failures.Count == 0, string.Join("; ", failures));
        Assert.True(loaded!.Certificate.HasPrivateKey);
    }

    [Fact]
    public async Task NoGatewayForTheClusterId_FailsWithinConnectTimeout_NamingTheClusterIdAndTheDatabase()
    {
        await using var database = await OrleansLsn.Tests.Membership.MembershipDatabase.CreateAsync(postgres, nameof(NoGatewayForTheClusterId_FailsWithinConnectTimeout_NamingTheClusterIdAndTheDatabase), Ct);
        await OrleansLsn.Membership.PostgresMembershipSchema.ApplyAsync(database.ConnectionString, null, Ct);
        var log = new OrleansLsn.Tests.Security.CapturedLog();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<ClusterConnectException>(() => OrleansLsnClient.ConnectAsync(
            o =>
            {
                o.ClusterId = "nobody-here";
                o.MembershipConnectionString = database.ConnectionString;
                o.Tls.Mode = ClusterTlsMode.Disabled;
                o.Client.ConnectTimeout = TimeSpan.FromSeconds(2);
            },
            host => host.Logging.AddProvider(log).SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Information),
            Ct));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"gave up after {sw.Elapsed}, with a 2 s connect timeout");
        Assert.Equal("nobody-here", error.ClusterId);
        Assert.Contains("'nobody-here'", error.Message, StringComparison.Ordinal);
        Assert.Contains($"/{database.Name} as ", error.Message, StringComparison.Ordinal);
        Assert.Contains("lists no active gateway for cluster id 'nobody-here'", error.Message, StringComparison.Ordinal);
        Assert.Contains("no cluster has an active gateway there", error.Message, StringComparison.Ordinal);
        Assert.Contains("OrleansLsn:Client:ConnectTimeout", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Password", error.Message, StringComparison.OrdinalIgnoreCase);

        Assert.True(
            log.Lines.Any(l => l.Contains("Connecting to cluster nobody-here: attempt 1 failed", StringComparison.Ordinal)),
            "no retry line in:\n" + string.Join('\n', log.Lines));
    }

    private static IEnumerable<Exception> Flatten(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            yield return e;
            if (e is AggregateException aggregate)
            {
                foreach (Exception inner in aggregate.InnerExceptions.SelectMany(Flatten))
                {
                    yield return inner;
                }
            }
        }
    }

    private static IHost BuildHost(Dictionary<string, string?> settings)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.UseOrleansLsnClient();
        return builder.Build();
    }

    private static OrleansLsnClientOptions Bind(Dictionary<string, string?> settings)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new OrleansLsnClientOptions();
        configuration.GetSection(OrleansLsnClientOptions.SectionName).Bind(options);
        return options;
    }
}
