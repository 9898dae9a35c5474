namespace OrleansLsn;

/// <summary>
/// One tracker per region (the grain key is the region name). It watches the region's replica and releases waiters once
/// their LSN has been replayed there. It only ever activates on a silo of its region; a call for a region without a
/// silo fails at once with <see cref="RegionUnavailableException"/>, and a key that is not a valid region name with
/// <see cref="ArgumentException"/>. Every method refuses <see cref="Lsn.Invalid"/> (0/0) with <see cref="ArgumentException"/>.
/// </summary>
public interface ILsnTrackerGrain : IGrainWithStringKey
{
    /// <summary>The latest replay LSN seen (cached); <see langword="null"/> before the first successful poll.</summary>
    Task<Lsn?> GetLastReplay();

    /// <summary>
    /// Whether the region's replica has replayed <paramref name="lsn"/>. When the cached position says no, one fresh
    /// poll of the replica is awaited before answering.
    /// </summary>
    Task<bool> IsReplicated(Lsn lsn);

    /// <summary>
    /// Pushes <see cref="ILsnObserver.OnLsnReplicated"/> once the replay LSN reaches <paramref name="lsn"/> (at once if it
    /// already has). A request that is not satisfied within the tracker's notification lifetime (60 s by default) is
    /// dropped without a push. The observer must stay reachable: a push that fails is not retried.
    /// </summary>
    /// <exception cref="LimitExceededException">The tracker already holds its cap of pending waiters
    /// (<c>OrleansLsn:Tracker:MaxPendingWaiters</c>, default 1 000 000); retry later.</exception>
    Task RequestNotification(Lsn lsn, ILsnObserver observer);

    /// <summary>
    /// Waits until the replay LSN reaches <paramref name="lsn"/> or <paramref name="timeout"/> elapses (default 3 s,
    /// at most 60 s). The wait never holds the grain's turn, so any number of callers wait at once. Cancelling
    /// <paramref name="cancellationToken"/> withdraws the wait at once. Idempotent: after a silo failure it can simply be
    /// retried.
    /// <para>
    /// Pass a token that cancels shortly after <paramref name="timeout"/>: a call in flight to a silo that dies is not
    /// failed by Orleans until the response timeout (65 s), while a cancelled token ends it on the caller's side at once.
    /// OrleansLsn.Client's session does this for you.
    /// </para>
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is not positive or exceeds the maximum.</exception>
    /// <exception cref="ArgumentException"><paramref name="lsn"/> is <see cref="Lsn.Invalid"/> (0/0), the default value.</exception>
    /// <exception cref="LimitExceededException">The tracker already holds its cap of pending waiters
    /// (<c>OrleansLsn:Tracker:MaxPendingWaiters</c>, default 1 000 000); retry later.</exception>
    [ResponseTimeout("00:01:05")]
    Task<LsnWaitResult> RequestAndAwait(Lsn lsn, TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Pushes <see cref="ILsnObserver.OnReplayAdvanced"/> on every advance (coalesced: the newest wins). Subscriptions
    /// expire unless renewed by subscribing again within the tracker's subscription expiry (5 min by default); an observer
    /// whose push fails or does not complete within the push timeout is dropped.
    /// </summary>
    /// <exception cref="LimitExceededException">The tracker already has its cap of subscribers
    /// (<c>OrleansLsn:Observers:MaxSubscribers</c>, default 10 000). Renewing an existing subscription always works.</exception>
    Task Subscribe(ILsnObserver observer);

    /// <summary>Stops the pushes started by <see cref="Subscribe"/>.</summary>
    Task Unsubscribe(ILsnObserver observer);

    /// <summary>
    /// Registers or renews a replay view (what OrleansLsn.Client uses to decide waits in the client process) and returns
    /// the tracker's state now. A view is pushed <see cref="IReplayViewObserver.OnReplayView"/> on every advance while it
    /// has demand, and otherwise at most once per <c>OrleansLsn:Observers:ViewRefreshInterval</c> (1 s) when the state
    /// changed, so idle views cost the tracker little however many clients there are.
    /// <para>
    /// Demand: with <paramref name="until"/> set, every advance is pushed until the replica has replayed it or
    /// <paramref name="lease"/> has passed, and the replica is polled at the active rate meanwhile. A call replaces the
    /// view's previous demand. Registrations expire unless renewed within the subscription expiry (5 min); a view whose
    /// push fails or times out is dropped (its next call registers it again).
    /// </para>
    /// </summary>
    /// <param name="view">The view's observer reference.</param>
    /// <param name="until">The highest LSN the view waits for, or <see langword="null"/> for no demand.</param>
    /// <param name="lease">How long the demand lasts (default 3 s, at most the maximum wait timeout, 60 s).</param>
    /// <exception cref="ArgumentOutOfRangeException">The lease is not positive or exceeds the maximum.</exception>
    /// <exception cref="LimitExceededException">The tracker already has its cap of subscribers and views
    /// (<c>OrleansLsn:Observers:MaxSubscribers</c>). Renewing an existing view always works.</exception>
    Task<ReplayViewState> WatchReplay(IReplayViewObserver view, Lsn? until = null, TimeSpan? lease = null);

    /// <summary>Ends a replay view registered with <see cref="WatchReplay"/>.</summary>
    Task UnwatchReplay(IReplayViewObserver view);

    /// <summary>The tracker's region, hosting silo, replay position, health, waiters and subscribers.</summary>
    Task<LsnTrackerStatus> GetStatus();
}
