namespace OrleansLsn.PostgresLocal;

/// <summary>How <see cref="LocalPostgresCluster"/> copies the primary's data folder into a new hot standby.</summary>
public enum StandbyCopyMethod
{
    /// <summary><see cref="PgBaseBackup"/> when the binaries have <c>pg_basebackup</c>, else <see cref="LowLevelBackup"/>.</summary>
    Auto,

    /// <summary><c>pg_basebackup -R -X stream</c> (Debian's binaries).</summary>
    PgBaseBackup,

    /// <summary>
    /// <c>pg_backup_start</c>, a file copy of the running primary and <c>pg_backup_stop</c> over SQL, then
    /// <c>standby.signal</c> and <c>primary_conninfo</c>; the standby streams the WAL it needs from the primary. Works with
    /// binaries that have no <c>pg_basebackup</c> (those of <c>deploy/postgres-binaries.sh</c>).
    /// </summary>
    LowLevelBackup,
}
