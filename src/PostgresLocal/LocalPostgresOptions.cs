namespace OrleansLsn.PostgresLocal;

/// <summary>Settings for a throw-away local primary and its hot standbys.</summary>
public sealed class LocalPostgresOptions
{
    /// <summary>The name of the one standby a cluster gets by default.</summary>
    public const string DefaultStandbyName = "standby";

    /// <summary>
    /// Folder under which each cluster gets its own sub-folder. Default: <c>$TMPDIR/orleanslsn-pg</c>. Sub-folders whose
    /// owning process is gone are removed (and their servers stopped) by the next start.
    /// </summary>
    public string RootDirectory { get; set; } = Path.Combine(Path.GetTempPath(), "orleanslsn-pg");

    /// <summary>
    /// Folder with <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>; default: <see cref="PostgresBinaries.FindBinDirectory()"/>
    /// (which honours <c>ORLEANSLSN_PG_BIN</c> and <c>ORLEANSLSN_PG_VERSION</c>).
    /// </summary>
    public string? BinDirectory { get; set; }

    /// <summary>
    /// How standbys are copied from the primary. Default <see cref="StandbyCopyMethod.Auto"/>: <c>pg_basebackup</c> where
    /// the binaries have it, else a low-level base backup over SQL.
    /// </summary>
    public StandbyCopyMethod StandbyCopy { get; set; } = StandbyCopyMethod.Auto;

    /// <summary>
    /// Whether to create the hot standbys named in <see cref="StandbyNames"/>. Default <see langword="true"/>;
    /// <see langword="false"/> starts the primary alone, whatever <see cref="StandbyNames"/> holds.
    /// </summary>
    public bool WithStandby { get; set; } = true;

    /// <summary>
    /// One hot standby is created per name, in this order (for example one per region: <c>["eu-west", "us-east"]</c>).
    /// Default: one standby named <see cref="DefaultStandbyName"/>. Assign a new list to replace the default; adding to
    /// the default list keeps <c>standby</c>. An empty list means no standby.
    /// </summary>
    /// <remarks>
    /// A name is 1–32 characters of lowercase ASCII letters, digits, <c>-</c> and <c>_</c>, unique in the list, and not
    /// <c>primary</c> or <c>owner</c> (used by the cluster folder itself). It names the standby's folder
    /// (<c>&lt;cluster folder&gt;/&lt;name&gt;</c>), its <c>cluster_name</c>, and the <c>application_name</c> it
    /// streams under, so the primary's <c>pg_stat_replication</c> tells the standbys apart. A name that breaks these
    /// rules makes <see cref="LocalPostgresCluster.StartAsync"/> throw <see cref="ArgumentException"/> before anything
    /// is started.
    /// </remarks>
    public IList<string> StandbyNames { get; set; } = [DefaultStandbyName];

    /// <summary>
    /// Extra server settings for the primary (and, through the base backup, the standbys), e.g.
    /// <c>["wal_sender_timeout"] = "2s"</c>. They are appended after the defaults, so they win.
    /// </summary>
    public IDictionary<string, string> Settings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// Extra server settings for one standby only, by standby name (a name of <see cref="StandbyNames"/>), appended after
    /// everything else, e.g. <c>["eu-west"] = { ["recovery_min_apply_delay"] = "'50ms'" }</c> to make that standby lag
    /// as a distant replica does. Values are written as given (quote strings as <c>postgresql.conf</c> wants them).
    /// A name that is not a standby makes <see cref="LocalPostgresCluster.StartAsync"/> throw
    /// <see cref="ArgumentException"/> before anything starts.
    /// </summary>
    public IDictionary<string, IDictionary<string, string>> StandbySettings { get; } =
        new Dictionary<string, IDictionary<string, string>>(StringComparer.Ordinal);

    /// <summary>
    /// Make the standbys failover-capable for logical slots (PostgreSQL 17+): each standby gets a physical slot on the
    /// primary (<see cref="LocalPostgresCluster.StandbySlotName(string)"/>) as its <c>primary_slot_name</c>, the
    /// primary lists those slots in <c>synchronized_standby_slots</c>, and each standby runs with
    /// <c>sync_replication_slots = on</c>, <c>hot_standby_feedback = on</c> and <c>dbname=postgres</c> in its
    /// <c>primary_conninfo</c>, so that it keeps copies of the primary's failover slots. Default
    /// <see langword="false"/>. On older binaries <see cref="LocalPostgresCluster.StartAsync"/> throws
    /// <see cref="LocalPostgresException"/> naming the version.
    /// </summary>
    public bool SynchronizeSlots { get; set; }

    /// <summary>How long one start or stop of a server may take. Default 60 s.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Whether TCP connections need a password. Default <see langword="false"/>: every connection is trusted, as a
    /// throw-away test server may be. When <see langword="true"/>, each cluster gets its own random password for the
    /// <c>postgres</c> superuser (given to <c>initdb</c> through a password file, mode 600, in the primary's folder and
    /// removed with the cluster) and <c>scram-sha-256</c> for every TCP connection, replication included; only the
    /// servers' Unix sockets, inside the cluster's private folder, stay trusted. The password is in every
    /// <see cref="LocalPostgresServer.ConnectionString"/> and in the standbys' <c>primary_conninfo</c>, and never on a
    /// command line.
    /// </summary>
    public bool PasswordAuthentication { get; set; }

    /// <summary>Name used in the folder and the application name, to tell clusters apart in <c>ps</c>. Default <c>pg</c>.</summary>
    public string Name { get; set; } = "pg";
}
