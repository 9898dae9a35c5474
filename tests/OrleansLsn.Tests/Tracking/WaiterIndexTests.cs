using OrleansLsn.Waiting;
using Xunit;

namespace OrleansLsn.Tests.Tracking;

/// <summary>The index against a plain reference model under random operations.</summary>
public sealed class WaiterIndexTests
{
    private sealed class TestWaiter(Lsn target, int id) : Waiter(target, 0)
    {
        public int Id { get; } = id;

        internal override void Complete(LsnWaitResult result) => throw new InvalidOperationException("not used by the index");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomOperations_MatchReferenceModel(int seed)
    {
        var random = new Random(seed);
        var index = new WaiterIndex();
        var model = new Dictionary<int, (TestWaiter Waiter, long Deadline)>();
        long now = 0;
        int nextId = 0;
        for (int step = 0; step < 20_000; step++)
        {
            int op = random.Next(10);
            if (op < 5)
            {
                var w = new TestWaiter(new Lsn((ulong)random.Next(0, 500)), nextId++);
                long deadline = now + random.Next(1, 9000); // crosses the 4096-slot wheel more than once
                index.Add(w, deadline);
                model[w.Id] = (w, Math.Max(deadline, index.LastExpiredTick + 1));
            }
            else if (op < 7 && model.Count > 0)
            {
                int id = model.Keys.ElementAt(random.Next(model.Count));
                Assert.True(index.Remove(model[id].Waiter));
                Assert.False(index.Remove(model[id].Waiter));
                model.Remove(id);
            }
            else if (op < 9)
            {
                var replay = new Lsn((ulong)random.Next(0, 500));
                HashSet<int> released = Drain(index.ReleaseUpTo(replay));
                var expected = model.Where(kv => kv.Value.Waiter.Target <= replay).Select(kv => kv.Key).ToHashSet();
                Assert.Equal(expected.Order(), released.Order());
                foreach (int id in released)
                {
                    model.Remove(id);
                }
            }
            else
            {
                now += random.Next(0, 3000);
                HashSet<int> expired = Drain(index.ExpireUpTo(now));
                var expected = model.Where(kv => kv.Value.Deadline <= now).Select(kv => kv.Key).ToHashSet();
                Assert.Equal(expected.Order(), expired.Order());
                foreach (int id in expired)
                {
                    model.Remove(id);
                }
            }

            Assert.Equal(model.Count, index.Count);
            Assert.Equal(model.Count == 0 ? null : model.Values.Min(v => v.Waiter.Target), index.MinTarget());
        }
    }

    [Fact]
    public void ExpireUpTo_NeverExpiresBeforeDeadline()
    {
        var index = new WaiterIndex();
        var w = new TestWaiter(new Lsn(10), 1);
        index.Add(w, deadlineTick: 5000); // more than one wheel round away: shares slot 5000 % 4096 with tick 904
        Assert.Null(index.ExpireUpTo(904));
        Assert.Null(index.ExpireUpTo(4999));
        Assert.Same(w, index.ExpireUpTo(5000));
        Assert.Equal(0, index.Count);
    }

    [Fact]
    public void ReleaseUpTo_LeavesHigherTargetsAndTheirDeadlines()
    {
        var index = new WaiterIndex();
        var low = new TestWaiter(new Lsn(1), 1);
        var high = new TestWaiter(new Lsn(100), 2);
        index.Add(low, 10);
        index.Add(high, 10);
        Assert.Equal([1], Drain(index.ReleaseUpTo(new Lsn(50))));
        Assert.Equal([2], Drain(index.ExpireUpTo(10)));
    }

    private static HashSet<int> Drain(Waiter? head)
    {
        var ids = new HashSet<int>();
        while (head is not null)
        {
            Assert.False(head.InIndex);
            Assert.True(ids.Add(((TestWaiter)head).Id), "a waiter is released once");
            head = head.Right;
        }

        return ids;
    }
}
