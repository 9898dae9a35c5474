using OrleansLsn.Hosting;

namespace OrleansLsn.Replication;

/// <summary>
/// One <see cref="IChangeObserver"/> subscribed to a <see cref="ReplicationGrain"/>: a pump subscription whose delivery
/// calls the observer. A delivery that completes confirms the batch. One that throws from the observer's own code is
/// retried by the pump with backoff, for ever. One that cannot reach the observer (its client vanished, or the call
/// neither completes nor fails within the subscriber timeout) is retried too, until the observer has been unreachable
/// for the subscriber timeout; then the owner is told to drop it.
/// </summary>
internal sealed class ChangeSubscriber : IAsyncDisposable
{
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly Action<ChangeSubscriber, string> _onUnreachable;
    private ReplicationSubscription? _subscription;
    private long _unreachableSince;
    private int _reported;

    internal ChangeSubscriber(IChangeObserver observer, TimeSpan timeout, TimeProvider time, Action<ChangeSubscriber, string> onUnreachable)
    {
        Observer = observer;
        _timeout = timeout;
        _time = time;
        _onUnreachable = onUnreachable;
    }

    internal IChangeObserver Observer { get; }

    /// <summary>The name the pump remembers the subscriber by (its observer's grain id).</summary>
    internal string Name => Observer.GetGrainId().ToString();

    /// <summary>
    /// Subscribes to the pump, remembered on the primary (so that a later activation holds the slot for it); with
    /// <paramref name="snapshot"/>, the copy comes first. A copy that fails later makes the owner drop the subscriber.
    /// </summary>
    internal async Task AttachAsync(ReplicationPump pump, SnapshotRequest? snapshot = null) =>
        _subscription = snapshot is null
            ? await pump.SubscribeAsync(DeliverAsync, Name).ConfigureAwait(false)
            : await pump.SubscribeFromSnapshotAsync(DeliverAsync, Name, snapshot, OnSnapshotFailed).ConfigureAwait(false);

    private void OnSnapshotFailed(string error)
    {
        if (Interlocked.Exchange(ref _reported, 1) == 0)
        {
            _onUnreachable(this, "its snapshot failed (" + error + "); it must subscribe again for a new one");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_subscription is { } subscription)
        {
            _subscription = null;
            await subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task DeliverAsync(ChangeBatch batch, CancellationToken cancellationToken)
    {
        long started = _time.GetTimestamp();
        try
        {
            await Observer.OnChanges(batch).WaitAsync(_timeout, _time, cancellationToken).ConfigureAwait(false);
            _unreachableSince = 0;
        }
        catch (Exception e) when (ObserverFailures.IsUnreachable(e) && !cancellationToken.IsCancellationRequested)
        {
            if (_unreachableSince == 0)
            {
                _unreachableSince = started;
            }

            if (_time.GetElapsedTime(_unreachableSince) >= _timeout && Interlocked.Exchange(ref _reported, 1) == 0)
            {
                _onUnreachable(this, ObserverFailures.Describe(e));
            }

            throw;
        }
    }
}
