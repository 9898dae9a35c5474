using OrleansLsn.Runtime;

namespace OrleansLsn;

/// <summary>
/// One tracker per region (the grain key is the region name). It watches the region's replica and releases waiters once
/// their LSN has been replayed there.
/// </summary>
public interface ILsnTrackerGrain : IGrainWithStringKey
{
    /// <summary>The latest replay LSN seen (cached); <see langword="null"/> before the first successful poll.</summary>
    Task<Lsn?> GetLastReplay();

    /// <summary>Whether the region's replica has replayed <paramref name="lsn"/>.</summary>
    Task<bool> IsReplicated(Lsn lsn);

    /// <summary>Pushes <see cref="ILsnObserver.OnLsnReplicated"/> once the replay LSN reaches <paramref name="lsn"/>.</summary>
    Task RequestNotification(Lsn lsn, ILsnObserver observer);

    /// <summary>Waits until the replay LSN reaches <paramref name="lsn"/> or the timeout (default 3 s) elapses.</summary>
    Task<LsnWaitResult> RequestAndAwait(Lsn lsn, TimeSpan? timeout = null);

    /// <summary>Pushes <see cref="ILsnObserver.OnReplayAdvanced"/> on every advance (coalesced).</summary>
    Task Subscribe(ILsnObserver observer);

    /// <summary>Stops the pushes started by <see cref="Subscribe"/>.</summary>
    Task Unsubscribe(ILsnObserver observer);
}
