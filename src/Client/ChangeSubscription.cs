using Microsoft.Extensions.Logging;

namespace OrleansLsn.Client;

/// <summary>
/// A subscription to a replication slot's changes (<see cref="IReplicationGrain.Subscribe"/>) that survives failover:
/// see <see cref="ObserverSubscription"/>. Created by
/// <see cref="ClusterClientSubscriptionExtensions.SubscribeToChangesAsync"/>. Delivery is the grain's: in commit
/// order, at least once; after a failover the new activation redelivers from the slot's confirmed position, so
/// de-duplicate on (<see cref="ChangeBatch.CommitLsn"/>, <see cref="ChangeBatch.Fragment"/>). Completing
/// <see cref="IChangeObserver.OnChanges"/> confirms a batch; throwing makes the grain deliver it again with backoff.
/// </summary>
public sealed class ChangeSubscription : ObserverSubscription
{
    private readonly IChangeObserver _observer;
    private readonly Relay _relay;
    private IChangeObserver? _reference;

    private ChangeSubscription(IClusterClient client, string slot, IChangeObserver observer, SubscriptionOptions? options, ILogger logger)
        : base(client, slot, options, logger)
    {
        Slot = slot;
        _observer = observer;
        _relay = new Relay(this);
    }

    /// <summary>The replication slot this subscribes to.</summary>
    public string Slot { get; }

    internal static async Task<ChangeSubscription> StartAsync(IClusterClient client, string slot, IChangeObserver observer, SubscriptionOptions? options, ILogger logger, CancellationToken cancellationToken)
    {
        var subscription = new ChangeSubscription(client, slot, observer, options, logger);
        await subscription.StartAsync(cancellationToken).ConfigureAwait(false);
        return subscription;
    }

    private protected override void CreateReference() => _reference = Client.CreateObjectReference<IChangeObserver>(_relay);

    private protected override Task SubscribeOnceAsync() => Grain.Subscribe(Reference);

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
            return owner._observer.OnChanges(batch);
        }
    }
}
