using OrleansLsn.Tests.Infrastructure;
using OrleansLsn.Tracking;
using Xunit;

namespace OrleansLsn.Tests.Tracking;

/// <summary>Waiter memory, measured on the GC heap; runs alone so that other tests' allocations do not count.</summary>
[Collection(MemoryMeasurementCollection.Name)]
public sealed class LsnTrackerMemoryTests
{
    private static LsnTracker PushOnly() => new("test", new LsnTrackerOptions());

    [Fact]
    public async Task MillionWaitsThatTimeOut_LeaveNothingBehind()
    {
        await using LsnTracker tracker = PushOnly();
        tracker.ReportReplay(new Lsn(1));
        var waits = new ValueTask<LsnWaitResult>[1_000_000];
        // Warm up so the baseline includes the tracker's own fixed structures.
        await tracker.RequestAndAwaitAsync(new Lsn(2), TimeSpan.FromMilliseconds(1), TestContext.Current.CancellationToken);
        long baseline = GC.GetTotalMemory(forceFullCollection: true);

        // Long enough that none expires before all are registered, even on a loaded 2-core machine.
        var timeout = TimeSpan.FromSeconds(10);
        for (int i = 0; i < waits.Length; i++)
        {
            waits[i] = tracker.RequestAndAwaitAsync(new Lsn((ulong)(i + 2)), timeout);
        }

        Assert.Equal(1_000_000, tracker.PendingWaiters + waits.Count(w => w.IsCompleted));
        long peak = GC.GetTotalMemory(forceFullCollection: true);
        int timedOut = 0;
        for (int i = 0; i < waits.Length; i++)
        {
            if ((await waits[i]).Outcome == LsnWaitOutcome.TimedOut)
            {
                timedOut++;
            }
        }

        Array.Clear(waits);
        Assert.Equal(1_000_000, timedOut);
        Assert.Equal(0, tracker.PendingWaiters);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        double perWaiter = (peak - baseline) / 1_000_000.0;
        Assert.True(after - baseline < 1_000_000, $"memory after the burst is {after - baseline} bytes above baseline (peak {perWaiter:0} bytes per waiter)");
    }
}
