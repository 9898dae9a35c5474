using Orleans.Concurrency;

namespace OrleansLsn;

/// <summary>
/// One grain per logical replication slot (the key is the slot name). It streams the slot's committed changes to its
/// subscribers with backpressure and acknowledges to PostgreSQL only what every subscriber confirmed.
/// </summary>
public interface IReplicationGrain : IGrainWithStringKey
{
    /// <summary>Received and flushed LSN, pause state, backlog, lag, reconnects and the last error.</summary>
    Task<ReplicationStatus> GetStatus();

    /// <summary>Stops reading from PostgreSQL until <see cref="Resume"/>; the connection stays alive.</summary>
    Task Pause();

    /// <summary>Lifts a manual pause. Backpressure may still hold the pump.</summary>
    Task Resume();

    /// <summary>
    /// Starts delivering batches to <paramref name="observer"/>, beginning with the oldest unconfirmed one. Returns once
    /// the subscriber's start position is fixed in the slot (the slot created if needed): every change committed after
    /// this returns reaches the observer, at least once and in commit order. Subscribing the same observer again changes
    /// nothing (renewals are cheap). The call does not hold the grain's turn while it waits for the slot.
    /// </summary>
    /// <exception cref="ReplicationSlotUnavailableException">The slot could not be made ready (it does not exist and may
    /// not be created, a right or a server setting is missing, or it was not ready within
    /// <c>OrleansLsn:Replication:SubscribeTimeout</c>); nothing was subscribed.</exception>
    /// <exception cref="ReplicationSlotNotConfiguredException">The slot is not configured in this cluster.</exception>
    /// <exception cref="LimitExceededException">The slot already has its cap of subscribers
    /// (<c>OrleansLsn:Replication:MaxSubscribers</c>, default 10 000). Subscribing the same observer again always works.</exception>
    [AlwaysInterleave]
    Task Subscribe(IChangeObserver observer);

    /// <summary>Stops delivering to <paramref name="observer"/>; what it has not confirmed no longer holds back acknowledgement.</summary>
    Task Unsubscribe(IChangeObserver observer);
}
