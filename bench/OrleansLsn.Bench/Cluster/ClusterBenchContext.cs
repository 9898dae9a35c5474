using Microsoft.Extensions.DependencyInjection;
using OrleansLsn.Client;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Bench.Cluster;

/// <summary>
/// One deployment of the cluster benchmark: a local primary and one standby (region <c>local</c>), one silo process of
/// <c>src/Silo</c>, and a client in this process through the client library, over TCP (mutual TLS unless turned off).
/// </summary>
internal sealed class ClusterBenchContext : IAsyncDisposable
{
    public const string Region = "local";
    public const string Table = "bench_cluster_rows";
    public const string Publication = "bench_cluster_pub";

    private ClusterBenchContext(LocalDeployment deployment, OrleansLsnClient client, bool quick, int streamRuns, int streamRows)
    {
        Deployment = deployment;
        Client = client;
        Quick = quick;
        StreamRuns = streamRuns;
        StreamRows = streamRows;
    }

    public LocalDeployment Deployment { get; }

    public OrleansLsnClient Client { get; }

    public bool Quick { get; }

    public int StreamRuns { get; }

    public int StreamRows { get; }

    public string Primary => Deployment.Postgres.Primary.ConnectionString;

    public string Standby => Deployment.ReplicaOf(Region);

    public SiloProcess Silo => Deployment.Silos[0];

    public bool Tls => Deployment.Options.Tls;

    public ILsnTrackerGrain Tracker => Client.Cluster.GetGrain<ILsnTrackerGrain>(Region);

    /// <summary>The client's replay views (the client library's singleton).</summary>
    public ReplayViews Views => Client.Services.GetRequiredService<ReplayViews>();

    /// <summary>The slot of streaming run <paramref name="run"/> (0 for the paused scenario).</summary>
    public static string Slot(int run) => $"bench_grain_{run}";

    /// <summary>
    /// Starts a deployment and connects the client. <paramref name="liftClientCap"/> raises
    /// <c>Tracker:MaxPendingWaitersPerClient</c> to 1 000 000, so that the grain-path anchors can hold 100 000 waits from
    /// one client; else the silo keeps its default (10 000).
    /// </summary>
    public static async Task<ClusterBenchContext> StartAsync(
        bool tls, bool quick, int streamRuns, int streamRows, bool? serverGc, bool liftClientCap, Action<string> progress, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? siloSettings = null)
    {
        var options = new LocalDeploymentOptions
        {
            Name = tls ? "bench-cluster" : "bench-cluster-notls",
            Regions = [Region],
            SilosPerRegion = 1,
            Tls = tls,
            ServerGarbageCollection = serverGc,
        };
        for (int run = 0; run <= streamRuns; run++)
        {
            options.Slots.Add((Slot(run), Publication, Table));
        }

        // The paused scenario holds a subscriber on purpose; it must not be dropped as unreachable meanwhile.
        options.SiloSettings["OrleansLsn:Replication:SubscriberTimeout"] = "00:10:00";
        options.SiloSettings["OrleansLsn:Replication:Slots:0:CreatePublication"] = "false";
        foreach ((string key, string value) in siloSettings ?? new Dictionary<string, string>())
        {
            options.SiloSettings[key] = value;
        }

        if (liftClientCap)
        {
            options.SiloSettings["OrleansLsn:Tracker:MaxPendingWaitersPerClient"] = "1000000";
        }

        for (int run = 0; run <= streamRuns; run++)
        {
            options.SiloSettings[$"OrleansLsn:Replication:Slots:{run}:CreatePublication"] = "false";
        }

        options.PostgresSettings["wal_sender_timeout"] = "'2s'";
        options.PostgresSettings["max_replication_slots"] = "40";
        options.PostgresSettings["max_wal_senders"] = "40";
        // Before the roles: they create the slots' publication as the table's owner.
        options.SetupSql.Add($"create table {Table} (id bigint primary key, payload text, n int, ts timestamptz)");
        LocalDeployment deployment = await LocalDeployment.StartAsync(options, progress, cancellationToken).ConfigureAwait(false);
        try
        {
            OrleansLsnClient client = await LocalClient.ConnectAsync(deployment.ClientSettings, cancellationToken, Microsoft.Extensions.Logging.LogLevel.Error).ConfigureAwait(false);
            return new ClusterBenchContext(deployment, client, quick, streamRuns, streamRows);
        }
        catch
        {
            await deployment.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync().ConfigureAwait(false);
        await Deployment.DisposeAsync().ConfigureAwait(false);
    }
}
