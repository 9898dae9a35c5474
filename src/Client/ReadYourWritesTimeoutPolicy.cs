namespace OrleansLsn.Client;

/// <summary>
/// Where <see cref="ReadYourWritesSession.OpenReadAsync"/> reads when the preferred region's replica has not replayed the
/// session's last write: ProxySQL's causal reads, with the replica positions known in the client process.
/// </summary>
public enum ReadYourWritesTimeoutPolicy
{
    /// <summary>Wait for the preferred replica within <see cref="ReadYourWritesOptions.WaitTimeout"/>, then throw <see cref="ReadYourWritesTimeoutException"/> naming the region, the LSN and the replica's replay position.</summary>
    Throw,

    /// <summary>Wait for the preferred replica within <see cref="ReadYourWritesOptions.WaitTimeout"/>, then read from the primary: slower for the caller, never a stale read.</summary>
    UsePrimary,

    /// <summary>
    /// Do not wait: read from the first other replica, in <see cref="ReadYourWritesOptions.ReplicaOrder"/> (nearest
    /// first), whose region's replay view already has the write; else from the primary. Decided in the client process,
    /// no grain call per read (replay views only; a session with <see cref="ReadYourWritesOptions.UseReplayView"/> off
    /// refuses this policy).
    /// </summary>
    UseAnyReplicaOrPrimary,
}
