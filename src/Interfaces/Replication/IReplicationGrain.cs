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

    /// <summary>
    /// Subscribes <paramref name="observer"/> as <see cref="Subscribe"/> does, but first delivers a consistent copy of the
    /// tables <paramref name="snapshot"/> names (batches with <see cref="ChangeBatch.Snapshot"/> set, then a completion
    /// marker), then the stream: every committed transaction is in the copy or in the stream after it, never both, never
    /// neither. The copy is read through one <c>REPEATABLE READ</c> transaction chunk by chunk, each chunk only after the
    /// observer confirmed the previous one, so a slow observer holds the read, not the silo's memory. Meanwhile the other
    /// subscribers keep streaming, and the slot's acknowledged position stays where it was when the copy was taken, until
    /// this observer has confirmed the stream past it. Returns once the snapshot is taken; a failure after that (the
    /// primary lost during the copy) drops the subscriber, so that subscribing again starts a new copy.
    /// </summary>
    /// <exception cref="ArgumentException">A table is not <c>schema.table</c>, not in the slot's publication, or the
    /// chunk size is out of range; nothing was subscribed.</exception>
    /// <exception cref="ReplicationSlotUnavailableException">As for <see cref="Subscribe"/>, or the snapshot could not be
    /// taken.</exception>
    /// <exception cref="ReplicationSlotNotConfiguredException">The slot is not configured in this cluster.</exception>
    /// <exception cref="LimitExceededException">As for <see cref="Subscribe"/>.</exception>
    [AlwaysInterleave]
    Task SubscribeFromSnapshot(IChangeObserver observer, SnapshotRequest snapshot);

    /// <summary>Stops delivering to <paramref name="observer"/>; what it has not confirmed no longer holds back acknowledgement.</summary>
    Task Unsubscribe(IChangeObserver observer);
}
