using Microsoft.Extensions.Logging;

namespace OrleansLsn.Client;

/// <summary>
/// A subscription to a replication slot's changes (<see cref="IReplicationGrain.Subscribe"/>) that survives failover:
/// see <see cref="ObserverSubscription"/>. Created by
/// <see cref="ClusterClientSubscriptionExtensions.SubscribeToChangesAsync(IClusterClient, string, IChangeObserver, SubscriptionOptions?, CancellationToken)"/>. Delivery is the grain's: in commit
/// order, at least once; after a failover the new activation redelivers from the slot's confirmed position, so
/// de-duplicate on (<see cref="ChangeBatch.CommitLsn"/>, <see cref="ChangeBatch.Fragment"/>). Completing
/// <see cref="IChangeObserver.OnChanges"/> confirms a batch; throwing makes the grain deliver it again with backoff.
/// </summary>
public sealed class ChangeSubscription : ObserverSubscription
{
    private readonly IChangeObserver _observer;
    private readonly SnapshotRequest? _snapshot;
    private readonly Relay _relay;
    private IChangeObserver? _reference;
    private volatile bool _snapshotComplete;

    private ChangeSubscription(IClusterClient client, string slot, IChangeObserver observer, SnapshotRequest? snapshot, SubscriptionOptions? options, ILogger logger)
        : base(client, slot, options, logger)
    {
        Slot = slot;
        _observer = observer;
        _snapshot = snapshot;
        _relay = new Relay(this);
    }

    /// <summary>The replication slot this subscribes to.</summary>
    public string Slot { get; }

    /// <summary>
    /// Whether the observer confirmed the snapshot's completion marker (always false without a snapshot). Until then a
    /// renewal (after a failover lost the subscriber) asks for a new snapshot, which starts again at
    /// <see cref="ChangeBatch.Sequence"/> 1; after it, a renewal subscribes to the stream only.
    /// </summary>
    public bool SnapshotComplete => _snapshotComplete;

    internal static async Task<ChangeSubscription> StartAsync(IClusterClient client, string slot, IChangeObserver observer, SnapshotRequest? snapshot, SubscriptionOptions? options, ILogger logger, CancellationToken cancellationToken)
    {
        var subscription = new ChangeSubscription(client, slot, observer, snapshot, options, logger);
        await subscription.StartAsync(cancellationToken).ConfigureAwait(false);
        return subscription;
    }

    private protected override void CreateReference() => _reference = Client.CreateObjectReference<IChangeObserver>(_relay);

    private protected override Task SubscribeOnceAsync() =>
        _snapshot is not null && !_snapshotComplete ? Grain.SubscribeFromSnapshot(Reference, _snapshot) : Grain.Subscribe(Reference);

    private protected override Task UnsubscribeOnceAsync() => Grain.Unsubscribe(Reference);

    private protected override void DeleteReference() => Client.DeleteObjectReference<IChangeObserver>(Reference);

    /// <summary>The object reference the grain holds (tests act on it behind the subscription's back).</summary>
    internal IChangeObserver ObserverReference => Reference;

    private IReplicationGrain Grain => Client.GetGrain<IReplicationGrain>(Slot);

    private IChangeObserver Reference => _reference ?? throw new InvalidOperationException("The observer reference was not created.");

    /// <summary>What the grain calls: forwards to the user's observer until the subscription is disposed.</summary>
    private sealed class Relay(ChangeSubscription owner) : IChangeObserver
    {
        public Task OnChanges(ChangeBatch batch)
        {
            // After disposal a batch must not count as confirmed: it was never handed to the observer.
            ObjectDisposedException.ThrowIf(owner.IsDisposed, owner);
            owner.CountPush();
            Task delivered = owner._observer.OnChanges(batch);
            return batch.Snapshot is { IsComplete: true } ? MarkCompleteAsync(delivered) : delivered;
        }

        private async Task MarkCompleteAsync(Task delivered)
        {
            await delivered.ConfigureAwait(false);
            owner._snapshotComplete = true;
        }
    }
}
