namespace OrleansLsn.PostgresLocal;

/// <summary>What a low-level base backup does with an entry at the top of the primary's data folder (<see cref="LowLevelBaseBackup.Classify"/>).</summary>
internal enum DataDirectoryEntry
{
    /// <summary>Copied with everything in it.</summary>
    Copy,

    /// <summary>Left out (the server's own run-time files and recovery markers).</summary>
    Skip,

    /// <summary>A folder created empty (rebuilt at start or, for <c>pg_wal</c>, streamed; <c>pg_wal</c> keeps an empty <c>archive_status</c>).</summary>
    CreateEmpty,
}
