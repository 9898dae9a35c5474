using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>The pump against the shared real primary: delivery, acknowledgement, pause and status.</summary>
public sealed class ReplicationPumpTests(PostgresFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Inserts_ArriveAsOneBatchPerTransaction_WithCommitMetadata()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(Inserts_ArriveAsOneBatchPerTransaction_WithCommitMetadata));
        ReplicationPump pump = scenario.StartPump();
        var recorder = new BatchRecorder();
        await using ReplicationSubscription subscription = pump.Subscribe(recorder.OnChangesAsync);
        await scenario.WaitStreamingAsync(pump);

        Lsn after1 = await scenario.InsertRangeAsync(1, 3, "a");
        Lsn after2 = await scenario.InsertRangeAsync(4, 4, "b");

        await Wait.UntilAsync(() => recorder.Confirmed.Count >= 2, Timeout, () => $"two batches; got {recorder.Confirmed.Count}; status {pump.Status}", Ct);
        IReadOnlyList<ChangeBatch> batches = recorder.Confirmed.Select(c => c.Batch).ToList();
        Assert.Equal(2, batches.Count);
        Assert.Equal([3, 1], batches.Select(b => b.Changes.Count));
        Assert.True(batches[0].CommitLsn < batches[1].CommitLsn);
        Assert.True(batches[0].CommitLsn <= after1 && batches[1].CommitLsn <= after2);
        Assert.All(batches, b => Assert.True(b.IsLastFragment && b.Fragment == 0 && b.EndLsn > b.CommitLsn && b.Xid != 0));
        Assert.NotEqual(batches[0].Xid, batches[1].Xid);
        Assert.All(batches, b => Assert.InRange(b.CommitTime, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1)));
        RowChange first = batches[0].Changes[0];
        Assert.Equal(ChangeKind.Insert, first.Kind);
        Assert.Equal(scenario.Table, first.Relation.Name);
        Assert.Equal("public", first.Relation.Schema);
        Assert.Equal(["id", "payload"], first.Relation.Columns.Select(c => c.Name));
        Assert.True(first.Relation.Columns[0].IsKey);
        Assert.Equal(["1", "a"], first.NewValues!);
        Assert.Equal("4", batches[1].Changes[0]["id"]);
    }
}
