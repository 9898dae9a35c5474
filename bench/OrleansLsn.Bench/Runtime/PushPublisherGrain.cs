using OrleansLsn.Runtime;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// Pushes numbered calls to the one subscribed observer, calling its reference directly (what
/// <see cref="ObserverManager{TObserver}"/>'s one-way <c>Notify</c> does per observer, without its per-call expiry scan).
/// </summary>
internal sealed class PushPublisherGrain : Grain, IPushPublisherGrain
{
    private IPushObserver? _observer;

    public Task Subscribe(IPushObserver observer)
    {
        _observer = observer;
        return Task.CompletedTask;
    }

    public async Task PushMany(int count)
    {
        IPushObserver observer = _observer ?? throw new InvalidOperationException("No observer subscribed.");
        for (int i = 0; i < count; i++)
        {
            // A one-way call completes once queued; it stays pending only while the send queue is full (backpressure).
            Task queued = observer.OnPush(i);
            if (!queued.IsCompletedSuccessfully)
            {
                await queued;
            }
        }
    }

    public async Task PushManyAwaited(int count)
    {
        IPushObserver observer = _observer ?? throw new InvalidOperationException("No observer subscribed.");
        for (int i = 0; i < count; i++)
        {
            await observer.OnPushAwaited(i);
        }
    }
}
