namespace OrleansLsn.Client;

/// <summary>Where a read of a <see cref="ReadYourWritesSession"/> went.</summary>
public enum ReadRoute
{
    /// <summary>The replica of the region asked for.</summary>
    Replica,

    /// <summary>Another region's replica that already had the session's last write (<see cref="ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary"/>).</summary>
    OtherReplica,

    /// <summary>The primary.</summary>
    Primary,
}

/// <summary>Why a read went where it did.</summary>
public enum ReadReason
{
    /// <summary>The session has recorded no write: any replica is good.</summary>
    NoWrite,

    /// <summary>The replica already had the write when the read was asked for.</summary>
    Replayed,

    /// <summary>The replica replayed the write while the read waited (see <see cref="ReadYourWritesRead.Waited"/>).</summary>
    ReplayedAfterWait,

    /// <summary>The preferred replica did not have the write within the wait timeout (policy <see cref="ReadYourWritesTimeoutPolicy.UsePrimary"/>).</summary>
    TimedOut,

    /// <summary>The preferred replica did not have the write, another one did (policy <see cref="ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary"/>).</summary>
    OtherReplicaHadWrite,

    /// <summary>No configured replica had the write (policy <see cref="ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary"/>).</summary>
    NoReplicaHadWrite,
}
