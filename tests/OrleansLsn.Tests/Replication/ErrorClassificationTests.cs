using Npgsql;
using OrleansLsn.Replication;
using Xunit;

namespace OrleansLsn.Tests.Replication;

public sealed class ErrorClassificationTests
{
    [Fact]
    public void NullReferenceFromNpgsqlReader_IsALostConnection_NotACrash()
    {
        // Npgsql 10.0.0 can surface a connection the server dropped as a NullReferenceException from its reader.
        Assert.Equal((ReplicationErrorKind.ConnectionLost, false), ReplicationPump.Classify(new NullReferenceException()));
    }

    [Theory]
    [InlineData("57P01", ReplicationErrorKind.ConnectionLost, false)] // admin_shutdown: pg_terminate_backend
    [InlineData("57P02", ReplicationErrorKind.ConnectionLost, false)] // crash_shutdown
    [InlineData("08006", ReplicationErrorKind.ConnectionLost, false)]
    [InlineData("55006", ReplicationErrorKind.SlotInUse, false)]      // replication slot is active for PID
    [InlineData("XX000", ReplicationErrorKind.Unexpected, false)]
    public void ServerErrors_AreClassified(string sqlState, ReplicationErrorKind kind, bool terminal) =>
        Assert.Equal((kind, terminal), ReplicationPump.Classify(new PostgresException("m", "FATAL", "FATAL", sqlState)));

    [Fact]
    public void InvalidatedSlotOnStart_IsTerminal()
    {
        var e = new PostgresException("cannot read from logical replication slot \"s\"", "ERROR", "ERROR", "55000",
            detail: "This slot has been invalidated because it exceeded the maximum reserved size.");
        Assert.Equal((ReplicationErrorKind.SlotInvalidated, true), ReplicationPump.Classify(e));
    }

    [Fact]
    public void MissingPublicationDuringStreaming_IsClassified()
    {
        var e = new PostgresException("publication \"p\" does not exist", "ERROR", "ERROR", "42704");
        Assert.Equal((ReplicationErrorKind.PublicationMissing, false), ReplicationPump.Classify(e));
    }

    [Fact]
    public void SocketAndTimeoutFailures_AreLostConnections()
    {
        Assert.Equal(ReplicationErrorKind.ConnectionLost, ReplicationPump.Classify(new IOException("reset")).Kind);
        Assert.Equal(ReplicationErrorKind.ConnectionLost, ReplicationPump.Classify(new TimeoutException()).Kind);
        Assert.Equal(ReplicationErrorKind.ConnectionLost, ReplicationPump.Classify(new NpgsqlException("broken")).Kind);
        Assert.Equal(ReplicationErrorKind.Unexpected, ReplicationPump.Classify(new InvalidCastException()).Kind);
    }
}
