namespace OrleansLsn;

/// <summary>
/// What a region's tracker knows about its replica, as pushed to replay views. Order states of one tracker activation by
/// <see cref="Version"/> (higher is newer, including a move back after the replica was replaced by one that is behind);
/// a different <see cref="Epoch"/> is another activation, whose state replaces the old one whatever its version.
/// </summary>
/// <param name="Region">The tracker's region.</param>
/// <param name="Replay">The replica's replay position; <see langword="null"/> before the first successful poll.</param>
/// <param name="IsPrimary">The watched server is a primary: every LSN counts as replicated there.</param>
/// <param name="Epoch">Identifies the tracker activation that produced the state (random, never 0).</param>
/// <param name="Version">Grows with every change of what the activation knows.</param>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.ReplayViewState")]
public sealed record ReplayViewState(
    [property: Id(0)] string Region,
    [property: Id(1)] Lsn? Replay,
    [property: Id(2)] bool IsPrimary,
    [property: Id(3)] long Epoch,
    [property: Id(4)] long Version)
{
    /// <summary>Whether a reader of this region's replica sees <paramref name="lsn"/> in this state.</summary>
    public bool Covers(Lsn lsn) => IsPrimary || (Replay is Lsn replay && replay >= lsn);
}
