using Microsoft.Extensions.Logging;

namespace OrleansLsn.Client;

/// <summary>
/// A subscription to a region's replay position (<see cref="ILsnTrackerGrain.Subscribe"/>) that survives failover: see
/// <see cref="ObserverSubscription"/>. Created by
/// <see cref="ClusterClientSubscriptionExtensions.SubscribeToReplayAsync"/>. The observer gets
/// <see cref="ILsnObserver.OnReplayAdvanced"/> on every advance (coalesced, newest wins); after the tracker moved to
/// another silo the first push after the renewal is the current position. An exception thrown by the observer is
/// logged and does not end the subscription.
/// </summary>
public sealed class LsnSubscription : ObserverSubscription
{
    private readonly ILsnObserver _observer;
    private readonly Relay _relay;
    private ILsnObserver? _reference;

    private LsnSubscription(IClusterClient client, string region, ILsnObserver observer, SubscriptionOptions? options, ILogger logger)
        : base(client, region, options, logger)
    {
        Region = region;
        _observer = observer;
        _relay = new Relay(this);
    }

    /// <summary>The region whose tracker this subscribes to.</summary>
    public string Region { get; }

    internal static async Task<LsnSubscription> StartAsync(IClusterClient client, string region, ILsnObserver observer, SubscriptionOptions? options, ILogger logger, CancellationToken cancellationToken)
    {
        var subscription = new LsnSubscription(client, region, observer, options, logger);
        await subscription.StartAsync(cancellationToken).ConfigureAwait(false);
        return subscription;
    }

    private protected override void CreateReference() => _reference = Client.CreateObjectReference<ILsnObserver>(_relay);

    private protected override Task SubscribeOnceAsync() => Tracker.Subscribe(Reference);

    private protected override Task UnsubscribeOnceAsync() => Tracker.Unsubscribe(Reference);

    private protected override void DeleteReference() => Client.DeleteObjectReference<ILsnObserver>(Reference);

    /// <summary>The object reference the grain holds (tests act on it behind the subscription's back).</summary>
    internal ILsnObserver ObserverReference => Reference;

    private ILsnTrackerGrain Tracker => Client.GetGrain<ILsnTrackerGrain>(Region);

    private ILsnObserver Reference => _reference ?? throw new InvalidOperationException("The observer reference was not created.");

    /// <summary>What the tracker calls: forwards to the user's observer until the subscription is disposed.</summary>
    private sealed class Relay(LsnSubscription owner) : ILsnObserver
    {
        public Task OnLsnReplicated(string region, Lsn requested, Lsn replay) => ForwardAsync(o => o.OnLsnReplicated(region, requested, replay));

        public Task OnReplayAdvanced(string region, Lsn replay) => ForwardAsync(o => o.OnReplayAdvanced(region, replay));

        private async Task ForwardAsync(Func<ILsnObserver, Task> push)
        {
            if (owner.IsDisposed)
            {
                return;
            }

            owner.CountPush();
            try
            {
                await push(owner._observer).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // A failed push would make the tracker drop the observer; the user's bug is logged instead.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Log.ObserverThrew(owner.Logger, nameof(LsnSubscription), owner.Region, e.GetType().Name, e.Message);
            }
        }
    }
}
