namespace OrleansLsn.PostgresLocal;

/// <summary>Settings for a throw-away local primary and hot standby.</summary>
public sealed class LocalPostgresOptions
{
    /// <summary>
    /// Folder under which each cluster gets its own sub-folder. Default: <c>$TMPDIR/orleanslsn-pg</c>. Sub-folders whose
    /// owning process is gone are removed (and their servers stopped) by the next start.
    /// </summary>
    public string RootDirectory { get; set; } = Path.Combine(Path.GetTempPath(), "orleanslsn-pg");

    /// <summary>Folder with <c>initdb</c>, <c>pg_ctl</c> and <c>pg_basebackup</c>; default: <see cref="PostgresBinaries.FindBinDirectory"/>.</summary>
    public string? BinDirectory { get; set; }

    /// <summary>Whether to create the hot standby. Default <see langword="true"/>.</summary>
    public bool WithStandby { get; set; } = true;

    /// <summary>
    /// Extra server settings for the primary (and, through <c>pg_basebackup</c>, the standby), e.g.
    /// <c>["wal_sender_timeout"] = "2s"</c>. They are appended after the defaults, so they win.
    /// </summary>
    public IDictionary<string, string> Settings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>How long one start or stop of a server may take. Default 60 s.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Name used in the folder and the application name, to tell clusters apart in <c>ps</c>. Default <c>pg</c>.</summary>
    public string Name { get; set; } = "pg";
}
