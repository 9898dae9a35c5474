using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OrleansLsn.Hosting;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Hosting;

/// <summary>The silo's <c>OrleansLsn</c> section: every problem is named with its key, and a wrong one stops the silo before it starts.</summary>
public sealed class SiloConfigurationTests
{
    private const string Password = "s3cret-Pa55word";

    private static Dictionary<string, string?> Valid() => new()
    {
        ["OrleansLsn:Region"] = "eu-west",
        ["OrleansLsn:PrimaryConnectionString"] = $"Host=127.0.0.1;Port=5432;Username=app;Password={Password}",
        ["OrleansLsn:ReplicaConnectionString"] = $"Host=127.0.0.2;Port=5432;Username=app;Password={Password}",
        ["OrleansLsn:Replication:Slots:0:Name"] = "orders",
        ["OrleansLsn:Replication:Slots:0:Publication"] = "orders_pub",
        ["OrleansLsn:Replication:Slots:0:Tables:0"] = "public.orders",
    };

    [Fact]
    public void ValidConfiguration_Passes()
    {
        OrleansLsnOptions options = Bind(Valid());
        Assert.True(new OrleansLsnOptionsValidator().Validate(null, options).Succeeded);
        Assert.Equal("public.orders", Assert.Single(Assert.Single(options.Replication.Slots).Tables));
    }

    [Fact]
    public void FailoverAndHosts_MapToThePump_ABadHostIsNamedWithItsKey()
    {
        Dictionary<string, string?> settings = Valid();
        settings["OrleansLsn:Replication:Slots:0:Failover"] = "true";
        settings["OrleansLsn:Replication:Slots:0:Hosts:0"] = "pg-a:5432";
        settings["OrleansLsn:Replication:Slots:0:Hosts:1"] = "pg-b:5432";
        OrleansLsnOptions options = Bind(settings);
        Assert.True(new OrleansLsnOptionsValidator().Validate(null, options).Succeeded);
        OrleansLsn.Replication.ReplicationPumpOptions pump = PumpOptionsFactory.Create(options, options.Replication.Slots[0]);
        Assert.True(pump.Failover);
        Assert.Equal(["pg-a:5432", "pg-b:5432"], pump.Hosts);
        Assert.False(PumpOptionsFactory.Create(Bind(Valid()), Bind(Valid()).Replication.Slots[0]).Failover);

        settings["OrleansLsn:Replication:Slots:0:Hosts:1"] = "pg-b:port";
        string[] failures = [.. new OrleansLsnOptionsValidator().Validate(null, Bind(settings)).Failures ?? []];
        Assert.Contains(failures, f => f.StartsWith("OrleansLsn:Replication:Slots:0:Hosts:1", StringComparison.Ordinal));
    }

    [Fact]
    public void AMissingConnectionStringFile_IsTheOnlyProblemReported_NotAlsoItsKeyAsRequired()
    {
        Dictionary<string, string?> settings = Valid();
        settings.Remove("OrleansLsn:ReplicaConnectionString");
        string missing = Path.Combine(Path.GetTempPath(), "orleanslsn-no-such-file-" + Guid.NewGuid().ToString("N"));
        settings["OrleansLsn:ReplicaConnectionStringFile"] = missing;
        OrleansLsnOptions options = Bind(settings);
        var failures = new List<string>();
        OrleansLsnSecretFiles.Resolve(options, failures);
        ValidateOptionsResult result = new OrleansLsnOptionsValidator().Validate(null, options);
        failures.AddRange(result.Failures ?? []);
        Assert.Equal($"OrleansLsn:ReplicaConnectionStringFile: file '{missing}' does not exist.", Assert.Single(failures));
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("60001")]
    public async Task DemoAndCluster_AReplayDelayOutOfRange_ExitWith2NamingTheOption_BeforeStartingAnything(string value)
    {
        Assert.Null(OrleansLsn.Silo.ClusterCommand.CheckReplayDelay(0));
        Assert.Null(OrleansLsn.Silo.ClusterCommand.CheckReplayDelay(50));
        foreach (System.CommandLine.Command command in new[] { OrleansLsn.Silo.DemoCommand.Create(), OrleansLsn.Silo.ClusterCommand.Create() })
        {
            TextWriter error = Console.Error;
            using var captured = new StringWriter();
            Console.SetError(captured);
            int exitCode;
            try
            {
                exitCode = await command.Parse(["--replay-delay", value]).InvokeAsync(cancellationToken: TestContext.Current.CancellationToken);
            }
            finally
            {
                Console.SetError(error);
            }

            Assert.Equal(2, exitCode);
            Assert.Contains($"--replay-delay must be between 0 and 60000 milliseconds; it is {value}.", captured.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void EveryProblem_IsReportedTogether_WithItsKey_AndNoSecret()
    {
        Dictionary<string, string?> settings = Valid();
        settings.Remove("OrleansLsn:Region");
        settings["OrleansLsn:ReplicaConnectionString"] = $"Host=;Password={Password};Bogus Key=1";
        settings["OrleansLsn:Tracker:DefaultWaitTimeout"] = "00:00:00";
        settings["OrleansLsn:Observers:PushTimeout"] = "-00:00:01";
        settings["OrleansLsn:Replication:SubscriberTimeout"] = "00:00:00";
        settings["OrleansLsn:Replication:Pump:HighWaterBatches"] = "0";
        settings["OrleansLsn:Replication:Slots:1:Name"] = "Bad-Slot";
        settings["OrleansLsn:Replication:Slots:1:Publication"] = "1pub";
        settings["OrleansLsn:Replication:Slots:2:Name"] = "orders";
        settings["OrleansLsn:Replication:Slots:2:Publication"] = "orders_pub";
        settings["OrleansLsn:Replication:Slots:2:Tables:0"] = "a.b.c";

        ValidateOptionsResult result = new OrleansLsnOptionsValidator().Validate(null, Bind(settings));
        Assert.True(result.Failed);
        string[] failures = [.. result.Failures];
        string[] expectedKeys =
        [
            "OrleansLsn:Region",
            "OrleansLsn:ReplicaConnectionString",
            "OrleansLsn:Tracker:DefaultWaitTimeout",
            "OrleansLsn:Observers:PushTimeout",
            "OrleansLsn:Replication:SubscriberTimeout",
            "OrleansLsn:Replication:Pump:HighWaterBatches",
            "OrleansLsn:Replication:Slots:1:Name",
            "OrleansLsn:Replication:Slots:1:Publication",
            "OrleansLsn:Replication:Slots:2:Name",
            "OrleansLsn:Replication:Slots:2:Tables:0",
        ];
        foreach (string key in expectedKeys)
        {
            Assert.Contains(failures, f => f.StartsWith(key, StringComparison.Ordinal));
        }

        Assert.DoesNotContain(failures, f => f.Contains(Password, StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("listed more than once", StringComparison.Ordinal));
    }

    [Fact]
    public void Caps_HaveDocumentedDefaults_AndOutOfRangeValuesAreNamedWithTheirKeys()
    {
        OrleansLsnOptions defaults = Bind(Valid());
        Assert.Equal(1_000_000, defaults.Tracker.MaxPendingWaiters);
        Assert.Equal(10_000, defaults.Observers.MaxSubscribers);
        Assert.Equal(10_000, defaults.Replication.MaxSubscribers);

        Dictionary<string, string?> settings = Valid();
        settings["OrleansLsn:Tracker:MaxPendingWaiters"] = "0";
        settings["OrleansLsn:Observers:MaxSubscribers"] = "-1";
        settings["OrleansLsn:Replication:MaxSubscribers"] = "2000000";
        string[] failures = [.. new OrleansLsnOptionsValidator().Validate(null, Bind(settings)).Failures ?? []];
        Assert.Contains(failures, f => f.StartsWith("OrleansLsn:Tracker:MaxPendingWaiters must be at least 1", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("OrleansLsn:Observers:MaxSubscribers must be between 1 and 1000000", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("OrleansLsn:Replication:MaxSubscribers must be between 1 and 1000000", StringComparison.Ordinal));
        Assert.Equal(3, failures.Length);
    }

    [Fact]
    public async Task SiloWithAWrongConfiguration_RefusesToStart_NamingEveryProblem()
    {
        Dictionary<string, string?> settings = Valid();
        settings["OrleansLsn:Region"] = "eu west";
        settings.Remove("OrleansLsn:PrimaryConnectionString");
        using IHost host = BuildSilo(settings);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains(error.Failures, f => f.StartsWith("OrleansLsn:Region", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("OrleansLsn:PrimaryConnectionString is required", StringComparison.Ordinal));
        Assert.DoesNotContain(Password, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConnectionStringFiles_AreReadIntoTheOptions_WithoutTheirTrailingNewline()
    {
        using var secrets = new SecretFolder();
        Dictionary<string, string?> settings = Valid();
        string primary = settings["OrleansLsn:PrimaryConnectionString"]!;
        string replica = settings["OrleansLsn:ReplicaConnectionString"]!;
        settings.Remove("OrleansLsn:PrimaryConnectionString");
        settings.Remove("OrleansLsn:ReplicaConnectionString");
        settings["OrleansLsn:PrimaryConnectionStringFile"] = secrets.Write("primary", primary + "\n");
        settings["OrleansLsn:ReplicaConnectionStringFile"] = secrets.Write("replica", replica + "\r\n");
        using IHost host = BuildSilo(settings);

        OrleansLsnOptions options = host.Services.GetRequiredService<IOptions<OrleansLsnOptions>>().Value;
        Assert.Equal(primary, options.PrimaryConnectionString);
        Assert.Equal(replica, options.ReplicaConnectionString);

        // By hand (as the silo executable binds its section): the same result through the same rules.
        OrleansLsnOptions bound = Bind(settings);
        var failures = new List<string>();
        OrleansLsnSecretFiles.Resolve(bound, failures);
        Assert.Empty(failures);
        Assert.Equal(primary, bound.PrimaryConnectionString);
        Assert.True(new OrleansLsnOptionsValidator().Validate(null, bound).Succeeded);
    }

    [Fact]
    public async Task ConnectionStringAndItsFile_BothSet_StopsTheSilo_NamingBothKeys_NeverTheSecret()
    {
        using var secrets = new SecretFolder();
        Dictionary<string, string?> settings = Valid();
        settings["OrleansLsn:PrimaryConnectionStringFile"] = secrets.Write("primary", $"Host=10.1.1.1;Password={Password}-file");
        using IHost host = BuildSilo(settings);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Equal(
            "OrleansLsn:PrimaryConnectionString and OrleansLsn:PrimaryConnectionStringFile are both set; set only one of them.",
            Assert.Single(error.Failures));
        Assert.DoesNotContain(Password, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingUnreadableOrEmptyFile_StopsTheSilo_NamingTheKeyAndThePath()
    {
        using var secrets = new SecretFolder();
        string missing = Path.Combine(secrets.Path, "no-such-file");
        string empty = secrets.Write("empty", "\r\n");
        Dictionary<string, string?> settings = Valid();
        settings.Remove("OrleansLsn:PrimaryConnectionString");
        settings.Remove("OrleansLsn:ReplicaConnectionString");
        settings["OrleansLsn:PrimaryConnectionStringFile"] = missing;
        settings["OrleansLsn:ReplicaConnectionStringFile"] = empty;
        using IHost host = BuildSilo(settings);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(TestContext.Current.CancellationToken));
        Assert.Contains($"OrleansLsn:PrimaryConnectionStringFile: file '{missing}' does not exist.", error.Failures);
        Assert.Contains($"OrleansLsn:ReplicaConnectionStringFile: file '{empty}' is empty.", error.Failures);

        // A folder where a file should be (as root, permissions alone would not stop the read).
        settings["OrleansLsn:ReplicaConnectionStringFile"] = secrets.Path;
        var failures = new List<string>();
        OrleansLsnSecretFiles.Resolve(Bind(settings), failures);
        Assert.Contains(failures, f => f.StartsWith($"OrleansLsn:ReplicaConnectionStringFile: file '{secrets.Path}' cannot be read (", StringComparison.Ordinal));
    }

    [Fact]
    public void AddOrleansLsn_Twice_RegistersOnce()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(Valid());
        builder.UseOrleans(silo => silo.UseLocalhostClustering(FreePort(), FreePort()).AddOrleansLsn(builder.Configuration).AddOrleansLsn(builder.Configuration));
        Assert.Single(builder.Services, d => d.ImplementationType == typeof(OrleansLsnOptionsValidator));
        Assert.Single(builder.Services, d => d.ServiceType == typeof(OrleansLsnSecretFiles));
        Assert.Single(builder.Services, d => d.ServiceType == typeof(SiloEngines));
    }

    private static OrleansLsnOptions Bind(Dictionary<string, string?> settings)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new OrleansLsnOptions();
        configuration.GetSection(OrleansLsnOptions.SectionName).Bind(options);
        return options;
    }

    private static IHost BuildSilo(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.UseOrleans(silo => silo.UseLocalhostClustering(FreePort(), FreePort()).AddOrleansLsn(builder.Configuration));
        return builder.Build();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
