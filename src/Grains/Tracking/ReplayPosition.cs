namespace OrleansLsn.Tracking;

/// <summary>One observation of the watched server.</summary>
/// <param name="IsPrimary">The server is not in recovery: every LSN counts as replicated.</param>
/// <param name="Lsn">Its replay LSN (standby) or current WAL LSN (primary); null on a standby that has replayed nothing.</param>
internal readonly record struct ReplayPosition(bool IsPrimary, Lsn? Lsn);
