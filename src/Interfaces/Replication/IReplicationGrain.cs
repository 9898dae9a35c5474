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

    /// <summary>Starts delivering batches to <paramref name="observer"/>, beginning with the oldest unconfirmed one.</summary>
    /// <exception cref="LimitExceededException">The slot already has its cap of subscribers
    /// (<c>OrleansLsn:Replication:MaxSubscribers</c>, default 10 000). Subscribing the same observer again always works.</exception>
    Task Subscribe(IChangeObserver observer);

    /// <summary>Stops delivering to <paramref name="observer"/>; what it has not confirmed no longer holds back acknowledgement.</summary>
    Task Unsubscribe(IChangeObserver observer);
}
