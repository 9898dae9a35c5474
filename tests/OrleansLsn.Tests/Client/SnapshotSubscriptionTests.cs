using System.Globalization;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// Snapshot then stream through the cluster: a client's <see cref="ChangeSubscription"/> with a
/// <see cref="SnapshotRequest"/> gets the published table as it was (snapshot batches, then the completion marker), then
/// every later change, on real silos and the real primary; a renewal after the grain deactivated does not copy again;
/// a request for a table outside the publication is refused before anything is subscribed.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SnapshotSubscriptionTests(ClusterFixture fixture) : ClusterTestBase(fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private static SubscriptionOptions Fast => new()
    {
        RenewalPeriod = TimeSpan.FromMilliseconds(300),
        RetryInitialDelay = TimeSpan.FromMilliseconds(50),
        RetryMaxDelay = TimeSpan.FromMilliseconds(500),
    };

    [Fact]
    public async Task WithASnapshot_TheObserverGetsTheTableAsItWas_ThenEveryLaterChange_AndARenewalDoesNotCopyAgain()
    {
        string slot = TestSlots.Snapshot;
        string table = TestSlots.Table(slot);
        string qualified = "public." + table;
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await ExecAsync(primary, $"insert into {table} select g, 'seed ' || g from generate_series(1, 450) g");

        var observer = new RecordingChangeObserver();
        await using ChangeSubscription subscription = await Client.SubscribeToChangesAsync(slot, observer, new SnapshotRequest { ChunkRows = 100 }, Fast, Ct);
        await Wait.UntilAsync(() => subscription.SnapshotComplete, Deadline, () => "the snapshot's completion confirmed");

        List<ChangeBatch> copy = observer.Recorder.Confirmed.Select(c => c.Batch).Where(b => b.Snapshot is not null).ToList();
        Assert.Equal([1, 2, 3, 4, 5, 6], copy.Select(b => b.Sequence));
        Assert.Equal([100, 100, 100, 100, 50, 0], copy.Select(b => b.Changes.Count));
        Assert.Equal([0L, 100, 200, 300, 400], copy.Take(5).Select(b => b.Snapshot!.RowsBefore));
        Assert.All(copy.Take(5), b => Assert.Equal(qualified, b.Snapshot!.Table));
        Assert.Equal([false, false, false, false, true], copy.Take(5).Select(b => b.Snapshot!.IsLastOfTable));
        SnapshotPart complete = copy[^1].Snapshot!;
        Assert.True(complete.IsComplete);
        Assert.Equal(450, complete.TotalRows);
        Assert.NotEqual(Lsn.Invalid, complete.ContinuesFrom);
        Assert.All(copy, b => Assert.Equal(complete.Cut, b.Snapshot!.Cut));

        await ExecAsync(primary, $"insert into {table} select g, 'later' from generate_series(451, 460) g");
        await ExecAsync(primary, $"update {table} set payload = 'changed' where id = 1");
        await ExecAsync(primary, $"delete from {table} where id = 2");
        await Wait.UntilAsync(() => Rebuild(observer).GetValueOrDefault(1) == "changed" && !Rebuild(observer).ContainsKey(2) && Rebuild(observer).ContainsKey(460),
            Deadline, () => "the later changes");
        Assert.Equal(await ReadAsync(primary, table), Rebuild(observer));

        // After the grain deactivated, the renewal subscribes to the stream only: no second copy.
        await Wait.ForAsync(Fixture.Cluster.DeactivateAsync(grain), Deadline, "deactivating the replication grain");
        await ExecAsync(primary, $"insert into {table} values (461, 'after the reactivation')");
        await Wait.UntilAsync(() => Rebuild(observer).ContainsKey(461), Deadline, () => "row 461 after the reactivation");
        Assert.Equal(6, observer.Recorder.Received.Count(b => b.Snapshot is not null));
        Assert.Equal(await ReadAsync(primary, table), Rebuild(observer));
    }

    [Fact]
    public async Task ASnapshotOfATableOutsideThePublication_IsRefusedWithAClearError_AndNothingIsSubscribed()
    {
        string slot = TestSlots.Snapshot;
        IReplicationGrain grain = Client.GetGrain<IReplicationGrain>(slot);
        int before = (await grain.GetStatus()).Subscribers;
        var observer = new RecordingChangeObserver();
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            Client.SubscribeToChangesAsync(slot, observer, SnapshotRequest.ForTables("public.r_cl_order"), Fast, Ct));
        Assert.Contains("\"public.r_cl_order\" is not in publication \"p_cl_snapshot\"", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, (await grain.GetStatus()).Subscribers);
        Assert.Equal(0, observer.Recorder.Calls);
    }

    /// <summary>The table rebuilt from what the observer confirmed: the copy, then the stream (delivered twice is applied once).</summary>
    private static Dictionary<long, string?> Rebuild(RecordingChangeObserver observer)
    {
        var rows = new Dictionary<long, string?>();
        var seen = new HashSet<(Lsn, int)>();
        foreach ((ChangeBatch batch, _) in observer.Recorder.Confirmed)
        {
            if (batch.Snapshot is null && !seen.Add((batch.CommitLsn, batch.Fragment)))
            {
                continue;
            }

            foreach (RowChange change in batch.Changes)
            {
                long id = long.Parse((change.NewValues ?? change.OldValues)![0]!, CultureInfo.InvariantCulture);
                if (change.Kind == ChangeKind.Delete)
                {
                    rows.Remove(id);
                }
                else
                {
                    rows[id] = change["payload"];
                }
            }
        }

        return rows;
    }

    private static async Task<Dictionary<long, string?>> ReadAsync(NpgsqlConnection primary, string table)
    {
        var rows = new Dictionary<long, string?>();
        await using var command = new NpgsqlCommand($"select id, payload from {table}", primary);
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            rows[reader.GetInt64(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
        }

        return rows;
    }
}
