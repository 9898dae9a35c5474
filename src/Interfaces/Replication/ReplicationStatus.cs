namespace OrleansLsn;

/// <summary>What a replication pump is doing.</summary>
[GenerateSerializer]
[Alias("OrleansLsn.ReplicationState")]
public enum ReplicationState
{
    /// <summary>Created, not started.</summary>
    Created,

    /// <summary>Checking the server, the slot and the publication, and opening the replication connection.</summary>
    Connecting,

    /// <summary>Connected and reading changes (possibly paused; see <see cref="ReplicationStatus.PauseReasons"/>).</summary>
    Streaming,

    /// <summary>The last attempt failed; waiting out the backoff before the next one.</summary>
    Reconnecting,

    /// <summary>Stopped for good by an error that needs an operator (see <see cref="ReplicationStatus.LastError"/>).</summary>
    Failed,

    /// <summary>Disposed.</summary>
    Stopped,
}

/// <summary>Why a pump is not reading from PostgreSQL.</summary>
[Flags]
[GenerateSerializer]
[Alias("OrleansLsn.PauseReasons")]
public enum PauseReasons
{
    /// <summary>Not paused.</summary>
    None = 0,

    /// <summary>Paused by a caller until a matching resume.</summary>
    Manual = 1,

    /// <summary>The unconfirmed backlog passed the high-water mark; lifts by itself below the low-water mark.</summary>
    Backpressure = 2,
}

/// <summary>The kind of the last error, so that callers can react without parsing messages.</summary>
[GenerateSerializer]
[Alias("OrleansLsn.ReplicationErrorKind")]
public enum ReplicationErrorKind
{
    /// <summary>No error.</summary>
    None,

    /// <summary>The connection failed or was lost (terminated backend, server restart, network). Retried.</summary>
    ConnectionLost,

    /// <summary>Another process holds the slot (an active walsender, or another pump's advisory lock). Retried.</summary>
    SlotInUse,

    /// <summary>The slot does not exist and creating it is disabled. Retried.</summary>
    SlotMissing,

    /// <summary>The slot exists but is not a pgoutput slot of this database. Retried.</summary>
    SlotMismatch,

    /// <summary>The publication does not exist and creating it is disabled. Retried.</summary>
    PublicationMissing,

    /// <summary>The server's <c>wal_level</c> is not <c>logical</c>, or the server is too old. Retried.</summary>
    ServerConfiguration,

    /// <summary>The slot was invalidated (WAL removed under <c>max_slot_wal_keep_size</c>). Terminal: recreate the slot.</summary>
    SlotInvalidated,

    /// <summary>A subscriber threw; its batch is retried with backoff.</summary>
    SubscriberFailed,

    /// <summary>Anything else. Retried.</summary>
    Unexpected,

    /// <summary>
    /// The connection's role lacks a right the pump needs: the <c>REPLICATION</c> attribute (slots and the replication
    /// connection), or the right to create the publication. The message names the role and the right. Retried, so
    /// granting it is enough.
    /// </summary>
    PermissionDenied,
}

/// <summary>A snapshot of a replication pump.</summary>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.ReplicationStatus")]
public sealed record ReplicationStatus
{
    /// <summary>The slot name.</summary>
    [Id(0)]
    public required string Slot { get; init; }

    /// <summary>The pump's state.</summary>
    [Id(1)]
    public required ReplicationState State { get; init; }

    /// <summary>The last WAL position received from the server (messages and keepalives).</summary>
    [Id(2)]
    public required Lsn ReceivedLsn { get; init; }

    /// <summary>The flush position reported to PostgreSQL: everything before it is confirmed by every subscriber.</summary>
    [Id(3)]
    public required Lsn FlushedLsn { get; init; }

    /// <summary>The server's current WAL write position, as last probed (<see langword="null"/> before the first probe).</summary>
    [Id(4)]
    public required Lsn? ServerLsn { get; init; }

    /// <summary>Bytes of WAL between <see cref="FlushedLsn"/> and <see cref="ServerLsn"/> (0 when unknown).</summary>
    [Id(5)]
    public required long LagBytes { get; init; }

    /// <summary>Whether the pump is not reading from the server.</summary>
    public bool IsPaused => PauseReasons != PauseReasons.None;

    /// <summary>Why it is paused.</summary>
    [Id(6)]
    public required PauseReasons PauseReasons { get; init; }

    /// <summary>Estimated bytes held for batches not yet confirmed by every subscriber.</summary>
    [Id(7)]
    public required long BacklogBytes { get; init; }

    /// <summary>Batches not yet confirmed by every subscriber.</summary>
    [Id(8)]
    public required int BacklogBatches { get; init; }

    /// <summary>Current subscribers.</summary>
    [Id(9)]
    public required int Subscribers { get; init; }

    /// <summary>Replication connections lost or refused since the pump started.</summary>
    [Id(10)]
    public required long ReconnectCount { get; init; }

    /// <summary>The kind of the last error.</summary>
    [Id(11)]
    public required ReplicationErrorKind LastErrorKind { get; init; }

    /// <summary>The last error (type and message; never a connection string), or <see langword="null"/>.</summary>
    [Id(12)]
    public required string? LastError { get; init; }

    /// <summary>When the last error happened.</summary>
    [Id(13)]
    public required DateTimeOffset? LastErrorAt { get; init; }

    /// <summary>The process id of the walsender serving the pump, while connected.</summary>
    [Id(14)]
    public required int? ServerPid { get; init; }

    /// <summary>How often status updates are sent to the server, derived from its <c>wal_sender_timeout</c>.</summary>
    [Id(15)]
    public required TimeSpan StatusInterval { get; init; }

    /// <summary>Rows (changes) delivered into the backlog since the pump started.</summary>
    [Id(16)]
    public required long ChangesReceived { get; init; }

    /// <summary>
    /// The silo hosting the replication grain (its address, <c>host:port@generation</c>), or <see langword="null"/> when
    /// the status comes straight from a pump outside a grain.
    /// </summary>
    [Id(17)]
    public string? Silo { get; init; }

    /// <summary>
    /// Subscribers of the slot's previous activation that have not subscribed again yet; the slot is held for each of
    /// them until it is back or <c>OrleansLsn:Replication:SubscriberTimeout</c> passed.
    /// </summary>
    [Id(18)]
    public int AwaitedSubscribers { get; init; }
}
