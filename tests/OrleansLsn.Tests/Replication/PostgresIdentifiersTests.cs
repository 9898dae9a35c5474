using Microsoft.Extensions.Options;
using OrleansLsn.Replication;
using Xunit;

namespace OrleansLsn.Tests.Replication;

public sealed class PostgresIdentifiersTests
{
    [Theory]
    [InlineData("slot")]
    [InlineData("s_1")]
    [InlineData("_")]
    [InlineData("0abc")]
    [InlineData("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk")]
    public void SlotName_PostgresRules_Accepted(string name) => Assert.Null(PostgresIdentifiers.CheckSlotName(name));

    [Theory]
    [InlineData("")]
    [InlineData("Slot")]
    [InlineData("slot-1")]
    [InlineData("slot; drop table x")]
    [InlineData("a\"b")]
    [InlineData("sl\u00f6t")]
    [InlineData("abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl")]
    public void SlotName_OutsidePostgresRules_Rejected(string name) => Assert.NotNull(PostgresIdentifiers.CheckSlotName(name));

    [Theory]
    [InlineData("pub")]
    [InlineData("Pub_1$")]
    [InlineData("_p")]
    public void PublicationName_Identifier_Accepted(string name) => Assert.Null(PostgresIdentifiers.CheckPublicationName(name));

    [Theory]
    [InlineData("")]
    [InlineData("1pub")]
    [InlineData("pub,other")]
    [InlineData("pub\"")]
    [InlineData("p b")]
    [InlineData("p\nb")]
    public void PublicationName_NotAnIdentifier_Rejected(string name) => Assert.NotNull(PostgresIdentifiers.CheckPublicationName(name));

    [Theory]
    [InlineData("orders", null)]
    [InlineData("sales.Orders", null)]
    [InlineData("a.b.c", "more than two parts")]
    [InlineData("sales.", "must not be empty")]
    [InlineData("x;drop", "';'")]
    public void TableName_Checked(string name, string? problem)
    {
        string? result = PostgresIdentifiers.CheckTableName(name);
        if (problem is null)
        {
            Assert.Null(result);
        }
        else
        {
            Assert.Contains(problem, result, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Quote_DoublesEmbeddedQuotes_AndQuotesEachTablePart()
    {
        Assert.Equal("\"a\"\"b\"", PostgresIdentifiers.Quote("a\"b"));
        Assert.Equal("\"sales\".\"Orders\"", PostgresIdentifiers.QuoteTable("sales.Orders"));
        Assert.Equal("\"orders\"", PostgresIdentifiers.QuoteTable("orders"));
    }

    [Fact]
    public void Pump_InvalidNames_RejectedBeforeAnySqlIsSent()
    {
        // The connection string points nowhere: if the pump tried to connect, it could not report a name problem.
        var options = new ReplicationPumpOptions
        {
            ConnectionString = "Host=203.0.113.1;Port=1;Username=u;Password=secret-password",
            SlotName = "Bad-Slot",
            PublicationName = "pub;drop",
        };
        options.PublicationTables.Add("a.b.c");

        OptionsValidationException e = Assert.Throws<OptionsValidationException>(() => new ReplicationPump(options));

        Assert.Contains(e.Failures, f => f.Contains("SlotName", StringComparison.Ordinal) && f.Contains("Bad-Slot", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("PublicationName", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("PublicationTables", StringComparison.Ordinal));
        Assert.DoesNotContain("secret-password", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(3601)]
    public void Pump_CreatedSlotSnapshotLifetime_OutOfRange_IsRejected(int seconds)
    {
        var options = new ReplicationPumpOptions
        {
            ConnectionString = "Host=203.0.113.1;Port=1;Username=u",
            SlotName = "s",
            PublicationName = "p",
            CreatedSlotSnapshotLifetime = TimeSpan.FromSeconds(seconds),
        };

        OptionsValidationException e = Assert.Throws<OptionsValidationException>(() => new ReplicationPump(options));
        Assert.Contains(e.Failures, f => f.Contains("CreatedSlotSnapshotLifetime must be between 0 and 1 h", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("00000003-0000001B-1", true)]
    [InlineData("00000004-00000002-1", true)]
    [InlineData("", false)]
    [InlineData("-1", false)]
    [InlineData("00000003-", false)]
    [InlineData("00000003--1", false)]
    [InlineData("0000000G-1", false)]
    [InlineData("1'; drop table t; --", false)]
    [InlineData("00000003", false)]
    public void SnapshotIds_OnlyPostgresForm_GoesIntoSetTransactionSnapshot(string id, bool valid) =>
        Assert.Equal(valid, OrleansLsn.Replication.Snapshot.TableSnapshotReader.IsSnapshotId(id));

    [Theory]
    [InlineData("60s", 60_000)]
    [InlineData("2s", 2_000)]
    [InlineData("1min", 60_000)]
    [InlineData("500ms", 500)]
    [InlineData("0", 0)]
    [InlineData("1500", 1_500)]
    public void WalSenderTimeout_ParsedAsShowPrintsIt(string text, int expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), ReplicationPump.ParsePostgresDuration(text));

    [Theory]
    [InlineData(2_000, 666.666)]
    [InlineData(60_000, 10_000)]
    [InlineData(0, 10_000)]
    [InlineData(150, 100)]
    public void StatusInterval_IsAThirdOfTheTimeout_Capped(int timeoutMs, double expectedMs) =>
        Assert.Equal(expectedMs, ReplicationPump.StatusIntervalFor(TimeSpan.FromMilliseconds(timeoutMs), TimeSpan.FromSeconds(10)).TotalMilliseconds, 0.01);
}
