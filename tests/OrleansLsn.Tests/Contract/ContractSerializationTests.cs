using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Xunit;

namespace OrleansLsn.Tests.Contract;

/// <summary>
/// Every contract type through Orleans' own serializer and copier, as they travel between clients and silos: a round
/// trip must give back an equal value, including edge values and the optional parts of a change.
/// </summary>
public sealed class ContractSerializationTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddSerializer().BuildServiceProvider();

    private Serializer Serializer => _services.GetRequiredService<Serializer>();

    private DeepCopier Copier => _services.GetRequiredService<DeepCopier>();

    public void Dispose() => _services.Dispose();

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(0x16_B374D848UL)]
    [InlineData(0xFFFFFFFF_00000000UL)]
    [InlineData(ulong.MaxValue)]
    public void Lsn_RoundTrips_IncludingEdgeValues(ulong value)
    {
        var lsn = new Lsn(value);
        Lsn back = RoundTrip(lsn);
        Assert.Equal(lsn, back);
        Assert.Equal(lsn.ToString(), back.ToString());
        Assert.Equal(lsn, Copier.Copy(lsn));

        Lsn? nullable = lsn;
        Assert.Equal(nullable, RoundTrip(nullable));
        Assert.Null(RoundTrip<Lsn?>(null));
    }

    [Fact]
    public void LsnWaitResult_RoundTrips_WithAndWithoutReplay()
    {
        var ready = new LsnWaitResult(LsnWaitOutcome.Ready, Lsn.MaxValue);
        var timedOut = new LsnWaitResult(LsnWaitOutcome.TimedOut, null);
        Assert.Equal(ready, RoundTrip(ready));
        Assert.Equal(timedOut, RoundTrip(timedOut));
        Assert.True(RoundTrip(ready).IsReady);
        Assert.False(RoundTrip(timedOut).IsReady);
    }

    [Fact]
    public void ChangeBatch_RoundTrips_WithNullsUnchangedToastAndOldKeys()
    {
        var relation = new ChangeRelation(16384, "public", "orders",
        [
            new ChangeColumn("id", 20, IsKey: true),
            new ChangeColumn("note", 25, IsKey: false),
            new ChangeColumn("big", 25, IsKey: false),
        ]);
        var batch = new ChangeBatch
        {
            Slot = "orders_slot",
            Sequence = 42,
            CommitLsn = Lsn.Parse("1/2A"),
            EndLsn = Lsn.Invalid,
            Xid = uint.MaxValue,
            CommitTime = new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero),
            Fragment = 3,
            IsLastFragment = false,
            FirstChangeIndex = 3000,
            Changes =
            [
                new RowChange(ChangeKind.Insert, relation, ["1", null, "x"]),
                new RowChange(ChangeKind.Update, relation, ["2", "new", null], OldValues: ["1", null, null], OldValuesAreKeyOnly: true, UnchangedToastColumns: [2]),
                new RowChange(ChangeKind.Delete, relation, null, OldValues: ["2", null, null], OldValuesAreKeyOnly: true),
                new RowChange(ChangeKind.Truncate, relation, null),
                new RowChange(ChangeKind.Insert, relation, ["3", "", "é 😀 \u0000"]),
            ],
        };

        ChangeBatch back = RoundTrip(batch);
        AssertBatchEqual(batch, back);
        AssertBatchEqual(batch, Copier.Copy(batch));
    }

    [Fact]
    public void SnapshotRequest_AndASnapshotBatch_RoundTrip()
    {
        SnapshotRequest request = SnapshotRequest.ForTables("public.orders", "sales.lines") with { ChunkRows = 250 };
        SnapshotRequest back = RoundTrip(request);
        Assert.Equal(request.Tables, back.Tables);
        Assert.Equal(250, back.ChunkRows);
        Assert.Empty(RoundTrip(SnapshotRequest.WholePublication).Tables);

        var relation = new ChangeRelation(16384, "public", "orders", [new ChangeColumn("id", 20, IsKey: true)]);
        var batch = new ChangeBatch
        {
            Slot = "orders_slot",
            Sequence = 3,
            CommitLsn = Lsn.Parse("1/2A"),
            EndLsn = Lsn.Invalid,
            Xid = 0,
            CommitTime = DateTimeOffset.UnixEpoch,
            Fragment = 3,
            IsLastFragment = false,
            FirstChangeIndex = 2000,
            Changes = [new RowChange(ChangeKind.Insert, relation, ["7"]), new RowChange(ChangeKind.Insert, relation, [null])],
            Snapshot = new SnapshotPart { Table = "public.orders", RowsBefore = 2000, IsLastOfTable = true, ContinuesFrom = Lsn.Parse("1/2A"), Cut = "750:760:752,755" },
        };
        ChangeBatch copy = RoundTrip(batch);
        AssertBatchEqual(batch, copy);
        Assert.Equal(batch.Snapshot, copy.Snapshot);
        var complete = new SnapshotPart { IsComplete = true, ContinuesFrom = Lsn.Parse("1/2A"), Cut = "750:760:", TotalRows = long.MaxValue, AtSlotCreation = true };
        Assert.Equal(complete, RoundTrip(complete));
    }

    [Fact]
    public void ReplicationStatus_RoundTrips()
    {
        var status = new ReplicationStatus
        {
            Slot = "s1",
            State = ReplicationState.Streaming,
            ReceivedLsn = Lsn.Parse("0/10"),
            FlushedLsn = Lsn.Parse("0/8"),
            ServerLsn = null,
            LagBytes = 8,
            PauseReasons = PauseReasons.Manual | PauseReasons.Backpressure,
            BacklogBytes = 1 << 20,
            BacklogBatches = 7,
            Subscribers = 2,
            ReconnectCount = 3,
            LastErrorKind = ReplicationErrorKind.SlotInUse,
            LastError = "SlotInUse: pid 123",
            LastErrorAt = DateTimeOffset.UnixEpoch,
            ServerPid = 123,
            StatusInterval = TimeSpan.FromMilliseconds(666),
            ChangesReceived = long.MaxValue,
            Silo = "127.0.0.1:11111@1",
        };
        Assert.Equal(status, RoundTrip(status));
    }

    [Fact]
    public void LsnTrackerStatus_RoundTrips()
    {
        var status = new LsnTrackerStatus
        {
            Region = "eu-west",
            Silo = "127.0.0.1:11111@1",
            LastReplay = Lsn.Parse("0/1"),
            IsPrimary = false,
            Health = TrackerHealthStatus.Degraded,
            HealthSince = DateTimeOffset.UnixEpoch,
            LastError = "SocketException: refused",
            PendingWaiters = 5,
            Subscribers = 1,
        };
        Assert.Equal(status, RoundTrip(status));
        Assert.Equal(status with { LastReplay = null, LastError = null }, RoundTrip(status with { LastReplay = null, LastError = null }));
    }

    [Fact]
    public void Exceptions_RoundTrip_WithTypeMessageAndDetails()
    {
        var region = new RegionUnavailableException("ap-south", ["us-east", "eu-west"]);
        var regionBack = Assert.IsType<RegionUnavailableException>(RoundTrip<Exception>(region));
        Assert.Equal(region.Message, regionBack.Message);
        Assert.Equal("ap-south", regionBack.Region);
        Assert.Equal(["us-east", "eu-west"], regionBack.AvailableRegions);
        Assert.Contains("'ap-south'", regionBack.Message, StringComparison.Ordinal);
        Assert.Contains("'eu-west', 'us-east'", regionBack.Message, StringComparison.Ordinal);

        var slot = new ReplicationSlotNotConfiguredException("other", ["a_slot", "b_slot"]);
        var slotBack = Assert.IsType<ReplicationSlotNotConfiguredException>(RoundTrip<Exception>(slot));
        Assert.Equal(slot.Message, slotBack.Message);
        Assert.Equal(["a_slot", "b_slot"], slotBack.ConfiguredSlots);
    }

    private T RoundTrip<T>(T value) => Serializer.Deserialize<T>(Serializer.SerializeToArray(value))!;

    private static void AssertBatchEqual(ChangeBatch expected, ChangeBatch actual)
    {
        Assert.Equal(expected.Slot, actual.Slot);
        Assert.Equal(expected.Sequence, actual.Sequence);
        Assert.Equal(expected.CommitLsn, actual.CommitLsn);
        Assert.Equal(expected.EndLsn, actual.EndLsn);
        Assert.Equal(expected.Xid, actual.Xid);
        Assert.Equal(expected.CommitTime, actual.CommitTime);
        Assert.Equal(expected.Fragment, actual.Fragment);
        Assert.Equal(expected.IsLastFragment, actual.IsLastFragment);
        Assert.Equal(expected.FirstChangeIndex, actual.FirstChangeIndex);
        Assert.Equal(expected.Changes.Count, actual.Changes.Count);
        for (int i = 0; i < expected.Changes.Count; i++)
        {
            RowChange e = expected.Changes[i];
            RowChange a = actual.Changes[i];
            Assert.Equal(e.Kind, a.Kind);
            Assert.Equal(e.Relation.RelationId, a.Relation.RelationId);
            Assert.Equal(e.Relation.QualifiedName, a.Relation.QualifiedName);
            Assert.Equal(e.Relation.Columns, a.Relation.Columns);
            Assert.Equal(e.NewValues, a.NewValues);
            Assert.Equal(e.OldValues, a.OldValues);
            Assert.Equal(e.OldValuesAreKeyOnly, a.OldValuesAreKeyOnly);
            Assert.Equal(e.UnchangedToastColumns, a.UnchangedToastColumns);
        }

        // One relation instance per batch stays one instance after the trip (no copy per row).
        Assert.Same(actual.Changes[0].Relation, actual.Changes[1].Relation);
    }
}
