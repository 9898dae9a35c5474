namespace OrleansLsn;

/// <summary>Receives committed changes from a <see cref="IReplicationGrain"/>.</summary>
public interface IChangeObserver : IGrainObserver
{
    /// <summary>
    /// One batch, in commit order. Completing the returned task confirms the batch; nothing past an unconfirmed batch
    /// is acknowledged to PostgreSQL. A faulted task is retried with backoff, so the same batch arrives again.
    /// </summary>
    Task OnChanges(ChangeBatch batch);
}
