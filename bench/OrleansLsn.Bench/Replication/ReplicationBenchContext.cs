using Npgsql.Replication.PgOutput;

namespace OrleansLsn.Bench.Replication;

/// <summary>What every replication scenario shares: the primary, its settings and the run's sizes.</summary>
/// <param name="Primary">Connection string of the primary.</param>
/// <param name="LogFile">The primary's server log, or <see langword="null"/> when it cannot be read (a given server).</param>
/// <param name="RecvLogical">The anchor: <c>pg_recvlogical</c>, the server's own or Debian's (see <see cref="PgRecvLogical.Find"/>).</param>
/// <param name="WalSenderTimeout">The primary's <c>wal_sender_timeout</c>.</param>
/// <param name="Protocol">The pgoutput protocol version the pump uses on this server, used by every other consumer too.</param>
/// <param name="Quick">Shorter run.</param>
/// <param name="Rows">Rows of the throughput workload (one transaction).</param>
/// <param name="Runs">Runs of each throughput consumer.</param>
/// <param name="BacklogBytes">WAL written while the pump is paused.</param>
/// <param name="Samples">Resume-latency samples per side.</param>
internal sealed record ReplicationBenchContext(
    string Primary,
    string? LogFile,
    PgRecvLogical RecvLogical,
    TimeSpan WalSenderTimeout,
    PgOutputProtocolVersion Protocol,
    bool Quick,
    int Rows,
    int Runs,
    long BacklogBytes,
    int Samples)
{
    /// <summary>Whether the server runs on this machine (the benchmark started it), so its log and processes can be read.</summary>
    public bool IsLocal => LogFile is not null;

    /// <summary>How long a paused consumer is held after its backlog is written: five times <c>wal_sender_timeout</c> (10 s if it is off).</summary>
    public TimeSpan PausedHold => WalSenderTimeout > TimeSpan.Zero ? WalSenderTimeout * 5 : TimeSpan.FromSeconds(10);

    /// <summary>The <c>proto_version</c> option value for <c>pg_recvlogical</c>.</summary>
    public int ProtocolNumber => Protocol switch
    {
        PgOutputProtocolVersion.V1 => 1,
        PgOutputProtocolVersion.V2 => 2,
        PgOutputProtocolVersion.V3 => 3,
        _ => 4,
    };

    /// <summary>The protocol the pump picks for a server (see <c>SlotSetup</c>): 2 on 14, 3 on 15, 4 from 16.</summary>
    public static PgOutputProtocolVersion ProtocolFor(int serverVersionNumber) => serverVersionNumber >= 160000 ? PgOutputProtocolVersion.V4
        : serverVersionNumber >= 150000 ? PgOutputProtocolVersion.V3
        : PgOutputProtocolVersion.V2;
}
