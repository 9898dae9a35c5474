namespace OrleansLsn.Client;

/// <summary>What <see cref="ReadYourWritesSession.OpenReadConnectionAsync"/> does when the region's replica has not replayed the session's writes in time.</summary>
public enum ReadYourWritesTimeoutPolicy
{
    /// <summary>Throw <see cref="ReadYourWritesTimeoutException"/> naming the region, the LSN and the replica's replay position.</summary>
    Throw,

    /// <summary>Hand out a connection to the primary instead: slower for the caller, never a stale read.</summary>
    UsePrimary,
}
