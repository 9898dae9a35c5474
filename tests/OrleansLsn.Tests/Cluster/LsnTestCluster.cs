using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;
using OrleansLsn.Hosting;
using OrleansLsn.Tests.Infrastructure;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// Builds an <see cref="InProcessTestCluster"/> of real Orleans silos in two regions, each silo configured through the
/// <c>OrleansLsn</c> section exactly as an operator would configure it: eu-west watches the first standby, us-east the
/// second. The test slots of <see cref="TestSlots"/> are configured with test-friendly pump settings.
/// </summary>
public static class LsnTestCluster
{
    public const string EuWest = "eu-west";
    public const string UsEast = "us-east";

    /// <summary>
    /// Builds and starts a cluster; <paramref name="regions"/> gives the region of silo 0, 1, ...; a silo started later
    /// takes its region from <paramref name="laterSilos"/> (by silo number), else alternates.
    /// </summary>
    public static async Task<InProcessTestCluster> StartAsync(
        PostgresFixture postgres,
        string[] regions,
        string[] alwaysOn,
        Action<IDictionary<string, string?>>? configure = null,
        IReadOnlyDictionary<int, string>? laterSilos = null,
        TimeSpan? responseTimeout = null)
    {
        var builder = new InProcessTestClusterBuilder((short)regions.Length);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSiloHost((silo, host) =>
        {
            string region = RegionOf(silo.SiloName, regions, laterSilos);
            var settings = new Dictionary<string, string?>
            {
                ["OrleansLsn:Region"] = region,
                ["OrleansLsn:PrimaryConnectionString"] = postgres.PrimaryConnectionString,
                ["OrleansLsn:ReplicaConnectionString"] = region == EuWest ? postgres.StandbyConnectionString : postgres.Standby2ConnectionString,
                ["OrleansLsn:Tracker:QueryTimeout"] = "00:00:01",
                ["OrleansLsn:Tracker:ReconnectMaxDelay"] = "00:00:00.500",
                ["OrleansLsn:Observers:PushTimeout"] = "00:00:01",
                ["OrleansLsn:Replication:SubscriberTimeout"] = "00:00:03",
                ["OrleansLsn:Replication:Pump:MonitorInterval"] = "00:00:00.200",
                ["OrleansLsn:Replication:Pump:ReconnectInitialDelay"] = "00:00:00.050",
                ["OrleansLsn:Replication:Pump:ReconnectMaxDelay"] = "00:00:00.500",
                ["OrleansLsn:Replication:Pump:SubscriberRetryInitialDelay"] = "00:00:00.020",
                ["OrleansLsn:Replication:Pump:SubscriberRetryMaxDelay"] = "00:00:00.200",
                ["OrleansLsn:Replication:Pump:HighWaterBatches"] = "16",
                ["OrleansLsn:Replication:Pump:LowWaterBatches"] = "8",
                ["OrleansLsn:Replication:AlwaysOnCheckInterval"] = "00:00:00.500",
            };
            for (int i = 0; i < TestSlots.All.Length; i++)
            {
                string slot = TestSlots.All[i];
                settings[$"OrleansLsn:Replication:Slots:{i}:Name"] = slot;
                settings[$"OrleansLsn:Replication:Slots:{i}:Publication"] = TestSlots.Publication(slot);
                settings[$"OrleansLsn:Replication:Slots:{i}:Tables:0"] = TestSlots.Table(slot);
                settings[$"OrleansLsn:Replication:Slots:{i}:AlwaysOn"] = alwaysOn.Contains(slot) ? "true" : "false";
                if (TestSlots.WithoutPublicationCreation.Contains(slot))
                {
                    settings[$"OrleansLsn:Replication:Slots:{i}:CreatePublication"] = "false";
                }
            }

            configure?.Invoke(settings);
            host.Configuration.AddInMemoryCollection(settings);
        });
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddOrleansLsn(silo.Configuration);
            if (responseTimeout is { } timeout)
            {
                silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = timeout);
            }

            silo.Configure<ClusterMembershipOptions>(o =>
            {
                // Fast failure detection, so that the kill tests take seconds, not a minute.
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
                o.TableRefreshTimeout = TimeSpan.FromSeconds(1);
                o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
            });
        });
        builder.ConfigureClient(client => client
            .AddActivityPropagation()   // as UseOrleansLsnClient does: a traced caller's trace continues in the silos
            .Services.Configure<ClientMessagingOptions>(o =>
            {
                o.CancelRequestOnTimeout = true;
                if (responseTimeout is { } timeout)
                {
                    o.ResponseTimeout = timeout;
                }
            }));
        InProcessTestCluster cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>The region of a silo of the test cluster, from its name (<c>Silo_N</c>).</summary>
    public static string RegionOf(string siloName, string[] regions, IReadOnlyDictionary<int, string>? laterSilos = null)
    {
        int index = int.Parse(siloName.AsSpan(siloName.LastIndexOf('_') + 1), System.Globalization.CultureInfo.InvariantCulture);
        if (index < regions.Length)
        {
            return regions[index];
        }

        return laterSilos is not null && laterSilos.TryGetValue(index, out string? region) ? region : (index % 2 == 0 ? EuWest : UsEast);
    }

    /// <summary>The region of the silo at <paramref name="address"/> (as <c>ToParsableString</c>), or null if unknown.</summary>
    public static string? RegionOfAddress(InProcessTestCluster cluster, string address, string[] regions, IReadOnlyDictionary<int, string>? laterSilos = null) =>
        cluster.Silos.FirstOrDefault(s => s.SiloAddress.ToParsableString() == address) is { } silo ? RegionOf(silo.Name, regions, laterSilos) : null;
}
