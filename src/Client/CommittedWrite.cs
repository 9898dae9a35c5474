namespace OrleansLsn.Client;

/// <summary>
/// The primary a write was made on: its system identifier (<c>pg_control_system()</c>, the same on the primary and every
/// physical replica of it, different for any other database cluster) and the timeline it was writing on (a new one
/// after each promotion). An LSN means something only beside both: the same number on another cluster or on an earlier
/// timeline is another point in another history.
/// </summary>
public readonly record struct PrimaryIdentity(ulong SystemIdentifier, uint Timeline)
{
    /// <inheritdoc/>
    public override string ToString() => $"system {SystemIdentifier}, timeline {Timeline}";
}

/// <summary>A committed write: the LSN a reader must wait for, and the primary that wrote it.</summary>
public readonly record struct CommittedWrite(Lsn Lsn, PrimaryIdentity Primary)
{
    /// <summary>
    /// Whether a write at <paramref name="lsn"/> on <paramref name="primary"/> replaces one held at
    /// <paramref name="heldLsn"/> on <paramref name="heldPrimary"/>: on another primary (another system identifier) the
    /// newer one always does, since the old cluster's positions mean nothing on the new one; on the same primary a later
    /// timeline, then a higher LSN.
    /// </summary>
    internal static bool Supersedes(Lsn lsn, PrimaryIdentity primary, Lsn heldLsn, PrimaryIdentity heldPrimary) =>
        heldPrimary.SystemIdentifier != primary.SystemIdentifier
        || primary.Timeline > heldPrimary.Timeline
        || (primary.Timeline == heldPrimary.Timeline && lsn > heldLsn);

    /// <inheritdoc/>
    public override string ToString() => $"{Lsn} ({Primary})";
}
