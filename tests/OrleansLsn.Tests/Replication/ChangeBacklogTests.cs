using OrleansLsn.Replication;
using Xunit;

namespace OrleansLsn.Tests.Replication;

public sealed class ChangeBacklogTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly List<Lsn> _confirmations = new();

    private ChangeBacklog Create(Action<ReplicationPumpOptions>? configure = null)
    {
        var options = new ReplicationPumpOptions { HighWaterBatches = 4, LowWaterBatches = 2, HighWaterBytes = 1000, LowWaterBytes = 500 };
        configure?.Invoke(options);
        return new ChangeBacklog(options, lsn =>
        {
            lock (_confirmations)
            {
                _confirmations.Add(lsn);
            }
        });
    }

    private static ChangeBatch Batch(ulong commit, int fragment, bool last) => new()
    {
        Slot = "s",
        Sequence = 0,
        CommitLsn = new Lsn(commit),
        EndLsn = last ? new Lsn(commit + 8) : Lsn.Invalid,
        Xid = 1,
        CommitTime = DateTimeOffset.UnixEpoch,
        Fragment = fragment,
        IsLastFragment = last,
        FirstChangeIndex = 0,
        Changes = [],
    };

    [Fact]
    public void NoSubscriber_NothingIsConfirmed_AndEntriesStay()
    {
        ChangeBacklog backlog = Create();
        backlog.Append(Batch(100, 0, true), 10, new Lsn(108));

        Assert.Equal(1, backlog.Count);
        Assert.Equal(Lsn.Invalid, backlog.ConfirmedLsn);
        Assert.False(backlog.IsDrained(out _));
        Assert.Empty(_confirmations);
    }

    [Fact]
    public void AcknowledgeWithoutSubscribers_DropsAndConfirmsAtOnce()
    {
        ChangeBacklog backlog = Create(o => o.AcknowledgeWithoutSubscribers = true);
        backlog.Append(Batch(100, 0, true), 10, new Lsn(108));

        Assert.Equal(0, backlog.Count);
        Assert.Equal(new Lsn(108), backlog.ConfirmedLsn);
        Assert.True(backlog.IsDrained(out long seq));
        Assert.Equal(1, seq);
    }

    [Fact]
    public async Task ConfirmedLsn_MovesOnlyWhenTheLastFragmentIsConfirmedByEverySubscriber()
    {
        ChangeBacklog backlog = Create(o => o.HighWaterBatches = 100);
        ChangeBacklog.Cursor a = backlog.AddCursor();
        ChangeBacklog.Cursor b = backlog.AddCursor();
        backlog.Append(Batch(100, 0, false), 10, Lsn.Invalid);
        backlog.Append(Batch(100, 1, true), 10, new Lsn(108));
        backlog.Append(Batch(200, 0, true), 10, new Lsn(208));

        ChangeBacklog.Entry first = await backlog.NextAsync(a, Ct);
        backlog.Confirm(a, first.Seq);
        ChangeBacklog.Entry second = await backlog.NextAsync(a, Ct);
        Assert.Equal(first.Seq + 1, second.Seq);
        backlog.Confirm(a, second.Seq);
        Assert.Equal(Lsn.Invalid, backlog.ConfirmedLsn); // b has confirmed nothing

        backlog.Confirm(b, first.Seq);
        Assert.Equal(Lsn.Invalid, backlog.ConfirmedLsn); // fragment 0 of 2 only
        Assert.Equal(2, backlog.Count);

        backlog.Confirm(b, second.Seq);
        Assert.Equal(new Lsn(108), backlog.ConfirmedLsn);
        Assert.Equal(1, backlog.Count);

        // Removing the slow subscriber frees what only it held.
        backlog.Confirm(a, second.Seq + 1);
        backlog.RemoveCursor(b);
        Assert.Equal(new Lsn(208), backlog.ConfirmedLsn);
        Assert.Equal(0, backlog.Count);
        Assert.Equal([new Lsn(108), new Lsn(208)], _confirmations);
    }

    [Fact]
    public async Task Markers_ConfirmLikeBatches()
    {
        ChangeBacklog backlog = Create();
        ChangeBacklog.Cursor a = backlog.AddCursor();
        backlog.Append(null, 0, new Lsn(50));

        ChangeBacklog.Entry entry = await backlog.NextAsync(a, Ct);
        Assert.Null(entry.Batch);
        backlog.Confirm(a, entry.Seq);
        Assert.Equal(new Lsn(50), backlog.ConfirmedLsn);
    }

    [Fact]
    public void HighWater_HoldsUntilBelowLowWater()
    {
        ChangeBacklog backlog = Create();
        ChangeBacklog.Cursor a = backlog.AddCursor();
        for (ulong i = 1; i <= 3; i++)
        {
            backlog.Append(Batch(i * 100, 0, true), 10, new Lsn((i * 100) + 8));
        }

        Assert.Null(backlog.CheckHighWater());
        backlog.Append(Batch(400, 0, true), 10, new Lsn(408));
        Task? relief = backlog.CheckHighWater();
        Assert.NotNull(relief);
        Assert.True(backlog.IsBackpressured);

        backlog.Confirm(a, 2); // 2 left: not below the low-water mark of 2
        Assert.False(relief.IsCompleted);
        backlog.Confirm(a, 3); // 1 left
        Assert.True(relief.IsCompletedSuccessfully);
        Assert.False(backlog.IsBackpressured);
        Assert.Null(backlog.CheckHighWater());
    }

    [Fact]
    public void HighWater_CountsBytesToo()
    {
        ChangeBacklog backlog = Create();
        ChangeBacklog.Cursor a = backlog.AddCursor();
        backlog.Append(Batch(100, 0, true), 1200, new Lsn(108));
        Task? relief = backlog.CheckHighWater();
        Assert.NotNull(relief);
        backlog.Confirm(a, 1);
        Assert.True(relief.IsCompletedSuccessfully);
        Assert.Equal(0, backlog.Bytes);
    }

    [Fact]
    public async Task LateSubscriber_StartsAtTheOldestUnconfirmedEntry()
    {
        ChangeBacklog backlog = Create(o => o.HighWaterBatches = 100);
        backlog.Append(Batch(100, 0, true), 10, new Lsn(108));
        backlog.Append(Batch(200, 0, true), 10, new Lsn(208));

        ChangeBacklog.Cursor a = backlog.AddCursor();
        ChangeBacklog.Entry entry = await backlog.NextAsync(a, Ct);
        Assert.Equal(new Lsn(100), entry.Batch!.CommitLsn);
    }

    [Fact]
    public async Task NextAsync_WaitsForAppend()
    {
        ChangeBacklog backlog = Create();
        ChangeBacklog.Cursor a = backlog.AddCursor();
        ValueTask<ChangeBacklog.Entry> next = backlog.NextAsync(a, Ct);
        Assert.False(next.IsCompleted);
        backlog.Append(Batch(100, 0, true), 10, new Lsn(108));
        ChangeBacklog.Entry entry = await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(1, entry.Seq);
    }

    [Fact]
    public void Ring_GrowsPastItsInitialSize_KeepingOrder()
    {
        ChangeBacklog backlog = Create(o => o.HighWaterBatches = 10_000);
        ChangeBacklog.Cursor a = backlog.AddCursor();
        for (ulong i = 1; i <= 300; i++)
        {
            backlog.Append(Batch(i * 100, 0, true), 1, new Lsn((i * 100) + 8));
            if (i % 7 == 0)
            {
                backlog.Confirm(a, (long)i - 3);
            }
        }

        backlog.Confirm(a, 300);
        Assert.Equal(new Lsn(30_008), backlog.ConfirmedLsn);
        Assert.Equal(0, backlog.Count);
    }
}
