namespace OrleansLsn.Replication;

/// <summary>Settings of one <see cref="ReplicationPump"/>. Defaults keep the pump's own memory under about 20 MB.</summary>
public sealed class ReplicationPumpOptions
{
    /// <summary>
    /// Connection string of the primary (a normal one; the pump opens the replication connection itself). It is never
    /// logged. Required.
    /// </summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>
    /// The logical replication slot. PostgreSQL's rule applies: 1 to 63 characters from <c>a-z</c>, <c>0-9</c> and
    /// <c>_</c>. Required.
    /// </summary>
    public string SlotName { get; set; } = "";

    /// <summary>
    /// The publication to stream: a letter or <c>_</c> followed by letters, digits, <c>_</c> or <c>$</c>, at most 63
    /// bytes. Required.
    /// </summary>
    public string PublicationName { get; set; } = "";

    /// <summary>
    /// Tables of the publication when the pump creates it, as <c>table</c> or <c>schema.table</c> (each part as
    /// PostgreSQL stores it; the pump quotes it). Empty: <c>FOR ALL TABLES</c>. An existing publication is not changed.
    /// </summary>
    public IList<string> PublicationTables { get; } = new List<string>();

    /// <summary>Create the slot (permanent, pgoutput) when it is missing. Default <see langword="true"/>.</summary>
    public bool CreateSlot { get; set; } = true;

    /// <summary>Create the publication when it is missing. Default <see langword="true"/>.</summary>
    public bool CreatePublication { get; set; } = true;

    /// <summary>
    /// Create the slot as a failover slot (PostgreSQL 17+, <c>failover =&gt; true</c>), so that standbys with
    /// <c>sync_replication_slots = on</c> keep a synchronised copy and streaming resumes from it after a promotion.
    /// Default <see langword="false"/>. On a server older than 17 the pump reports a
    /// <see cref="ReplicationErrorKind.ServerConfiguration"/> error naming the version instead of streaming without the
    /// guarantee; an existing slot without failover is reported as <see cref="ReplicationErrorKind.SlotMismatch"/> with
    /// the command that fixes it. Both are retried.
    /// </summary>
    public bool Failover { get; set; }

    /// <summary>
    /// The servers that may be the primary, as <c>host</c> or <c>host:port</c> (<c>[v6]:port</c> for an IPv6
    /// address; without a port, the connection string's). At each (re)connect the pump tries them in order and streams
    /// from the first that is not in recovery (<c>pg_is_in_recovery()</c> is false), with the connection string's other
    /// settings. Empty (the default): the connection string's hosts; a connection string with several hosts
    /// (<c>Host=h1:5432,h2:5432</c>) is treated the same way, because Npgsql's replication connection accepts only one.
    /// </summary>
    public IList<string> Hosts { get; } = new List<string>();

    /// <summary>
    /// How long the snapshot exported when this pump creates the slot is kept for the slot's first subscriber: if that
    /// one asks for a snapshot (<see cref="ReplicationPump.SubscribeFromSnapshotAsync"/>), its copy is read in exactly the
    /// transactions before the slot's consistent point and its stream starts there (<see cref="SnapshotPart.AtSlotCreation"/>).
    /// Meanwhile the snapshot's open transaction holds back the primary's xmin horizon and the slot is held at its
    /// consistent point; after this time, once taken, or when the first subscriber asks for no snapshot, both are
    /// released, and later snapshot subscribers get a snapshot of their own (as exact, by the cut's filter). Zero: the
    /// slot is created without an exported snapshot. Between 0 and 1 h; default 1 min. A failover slot
    /// (<see cref="Failover"/>) is always created without one (Npgsql 10 cannot ask for both).
    /// </summary>
    public TimeSpan CreatedSlotSnapshotLifetime { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// With no subscriber, acknowledge what arrives (and drop it) instead of holding it. Default
    /// <see langword="false"/>: nothing is acknowledged without a subscriber, so the first subscriber gets everything
    /// since the last acknowledgement, and backpressure pauses the pump meanwhile.
    /// </summary>
    public bool AcknowledgeWithoutSubscribers { get; set; }

    /// <summary>
    /// Remember the subscribers added with <see cref="ReplicationPump.SubscribeAsync"/> in a table on the primary
    /// (<c>orleanslsn_replication_subscribers</c>, created if missing and allowed), so that a later pump of the slot holds
    /// it for each of them until it subscribed again or <see cref="RejoinTimeout"/> passed. Default
    /// <see langword="false"/>; the replication grain turns it on.
    /// </summary>
    public bool RememberSubscribers { get; set; }

    /// <summary>
    /// How long a pump holds the slot for a remembered subscriber that has not subscribed again (see
    /// <see cref="RememberSubscribers"/>); then it is forgotten, as a subscriber that cannot be reached is dropped. Default 30 s.
    /// </summary>
    public TimeSpan RejoinTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Pause reading once the unconfirmed backlog holds this many (estimated) bytes. Default 8 MiB.</summary>
    public long HighWaterBytes { get; set; } = 8L * 1024 * 1024;

    /// <summary>Resume once the backlog is below this many bytes (and below <see cref="LowWaterBatches"/>). Default 4 MiB.</summary>
    public long LowWaterBytes { get; set; } = 4L * 1024 * 1024;

    /// <summary>Pause reading once this many batches are unconfirmed. Default 1024.</summary>
    public int HighWaterBatches { get; set; } = 1024;

    /// <summary>Resume once fewer batches than this are unconfirmed (and the bytes are below <see cref="LowWaterBytes"/>). Default 512.</summary>
    public int LowWaterBatches { get; set; } = 512;

    /// <summary>
    /// Largest number of changes in one batch; a larger transaction arrives as several fragments. Default 1000.
    /// </summary>
    public int MaxBatchChanges { get; set; } = 1000;

    /// <summary>Largest (estimated) size of one batch; a larger transaction arrives as several fragments. Default 1 MiB.</summary>
    public long MaxBatchBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Upper bound of the status update interval. The interval is a third of the server's <c>wal_sender_timeout</c>
    /// (read at each connect), capped by this value (also used when the timeout is disabled). Default 10 s.
    /// </summary>
    public TimeSpan MaxStatusInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often the pump checks its connections and the server's WAL position (for the lag), and acknowledges
    /// keepalive positions when idle. Default 1 s.
    /// </summary>
    public TimeSpan MonitorInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Timeout of the pump's own queries and connection attempts (rounded up to whole seconds). Default 10 s.</summary>
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First delay before reconnecting after a failure; it doubles per failure. Default 100 ms.</summary>
    public TimeSpan ReconnectInitialDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Cap of the reconnect delay. Default 10 s.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First delay before a batch is delivered again to a subscriber that threw; it doubles per failure. Default 100 ms.</summary>
    public TimeSpan SubscriberRetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Cap of the subscriber retry delay. Default 5 s.</summary>
    public TimeSpan SubscriberRetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// <c>application_name</c> of the pump's connections, as seen in <c>pg_stat_activity</c> and
    /// <c>pg_stat_replication</c>. Default <c>orleanslsn-pump-{slot}</c>.
    /// </summary>
    public string? ApplicationName { get; set; }
}
