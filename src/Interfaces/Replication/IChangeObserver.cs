namespace OrleansLsn;

/// <summary>Receives committed changes from a <see cref="IReplicationGrain"/>.</summary>
public interface IChangeObserver : IGrainObserver
{
    /// <summary>
    /// One batch, in commit order. Completing the returned task confirms the batch; nothing past an unconfirmed batch
    /// is acknowledged to PostgreSQL. A faulted task is retried with backoff, so the same batch arrives again.
    /// </summary>
    /// <remarks>
    /// The call's response timeout is long (1 h) on purpose: how long a delivery may take is the replication grain's
    /// <c>Replication:SubscriberTimeout</c> (30 s by default), after which an unanswered subscriber is dropped; Orleans'
    /// default 30 s would otherwise cut a deliberately slow (backpressuring) subscriber short.
    /// </remarks>
    [ResponseTimeout("01:00:00")]
    Task OnChanges(ChangeBatch batch);
}
