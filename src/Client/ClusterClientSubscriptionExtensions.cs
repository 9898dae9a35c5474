using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OrleansLsn.Client;

/// <summary>Subscriptions to OrleansLsn grains that re-subscribe by themselves after a silo or gateway failure.</summary>
public static class ClusterClientSubscriptionExtensions
{
    /// <summary>
    /// Subscribes <paramref name="observer"/> to the replay position of <paramref name="region"/>'s replica and keeps it
    /// subscribed (see <see cref="LsnSubscription"/>). The observer stays referenced by the returned subscription;
    /// dispose the subscription to stop.
    /// </summary>
    /// <exception cref="RegionUnavailableException">No silo of the region is active (the first subscribe fails; nothing is left behind).</exception>
    /// <exception cref="ArgumentException"><paramref name="options"/> is not valid, or <paramref name="region"/> is not a region name.</exception>
    public static Task<LsnSubscription> SubscribeToReplayAsync(
        this IClusterClient client,
        string region,
        ILsnObserver observer,
        SubscriptionOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(region);
        ArgumentNullException.ThrowIfNull(observer);
        return LsnSubscription.StartAsync(client, region, observer, options, LoggerOf<LsnSubscription>(client), cancellationToken);
    }

    /// <summary>
    /// Subscribes <paramref name="observer"/> to the changes of the replication slot <paramref name="slot"/> and keeps it
    /// subscribed (see <see cref="ChangeSubscription"/>). The observer stays referenced by the returned subscription;
    /// dispose the subscription to stop.
    /// </summary>
    /// <exception cref="ReplicationSlotNotConfiguredException">The slot is not configured in the cluster (the first subscribe fails; nothing is left behind).</exception>
    /// <exception cref="ArgumentException"><paramref name="options"/> is not valid.</exception>
    public static Task<ChangeSubscription> SubscribeToChangesAsync(
        this IClusterClient client,
        string slot,
        IChangeObserver observer,
        SubscriptionOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(slot);
        ArgumentNullException.ThrowIfNull(observer);
        return ChangeSubscription.StartAsync(client, slot, observer, null, options, LoggerOf<ChangeSubscription>(client), cancellationToken);
    }

    /// <summary>
    /// As <see cref="SubscribeToChangesAsync(IClusterClient, string, IChangeObserver, SubscriptionOptions?, CancellationToken)"/>,
    /// but the observer first gets a consistent copy of the tables <paramref name="snapshot"/> names
    /// (<see cref="IReplicationGrain.SubscribeFromSnapshot"/>): snapshot batches (<see cref="ChangeBatch.Snapshot"/>),
    /// a completion marker, then the stream, joined exactly. If the subscriber is lost before the observer confirmed the
    /// marker, the renewal asks for a new snapshot (starting again at <see cref="ChangeBatch.Sequence"/> 1: discard the
    /// unfinished copy); after it, for the stream only.
    /// </summary>
    /// <exception cref="ArgumentException">A table is not in the slot's publication, or <paramref name="options"/> is not valid.</exception>
    /// <exception cref="ReplicationSlotNotConfiguredException">The slot is not configured in the cluster.</exception>
    public static Task<ChangeSubscription> SubscribeToChangesAsync(
        this IClusterClient client,
        string slot,
        IChangeObserver observer,
        SnapshotRequest snapshot,
        SubscriptionOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(slot);
        ArgumentNullException.ThrowIfNull(observer);
        ArgumentNullException.ThrowIfNull(snapshot);
        return ChangeSubscription.StartAsync(client, slot, observer, snapshot, options, LoggerOf<ChangeSubscription>(client), cancellationToken);
    }

    private static ILogger LoggerOf<T>(IClusterClient client) =>
        client.ServiceProvider.GetService<ILoggerFactory>()?.CreateLogger<T>() ?? (ILogger)NullLogger.Instance;
}
