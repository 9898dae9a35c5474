using System.Diagnostics;
using OrleansLsn.Bench.Common;
using OrleansLsn.Tracking;

namespace OrleansLsn.Bench.Tracker;

/// <summary>
/// Memory per pending waiter: 1 M waits registered on a push-only tracker (no replica), measured with
/// <see cref="GC.GetTotalMemory(bool)"/> before and after, with the array holding their ValueTasks allocated before
/// the baseline; then one <see cref="LsnTracker.ReportReplay"/> releases them all and every one is awaited.
/// </summary>
internal static class WaiterMemoryScenario
{
    private const int Waiters = 1_000_000;
    private const double GoalBytes = 200;

    public static async Task RunAsync(TrackerBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        await using var tracker = new LsnTracker("memory", new LsnTrackerOptions());
        tracker.ReportReplay(new Lsn(1));
        var waits = new ValueTask<LsnWaitResult>[Waiters];
        cancellationToken.ThrowIfCancellationRequested();
        long before = GC.GetTotalMemory(forceFullCollection: true);

        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < Waiters; i++)
        {
            waits[i] = tracker.RequestAndAwaitAsync(new Lsn((ulong)i + 2), TimeSpan.FromMinutes(5), CancellationToken.None);
        }

        TimeSpan register = Stopwatch.GetElapsedTime(start);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        if (tracker.PendingWaiters != Waiters)
        {
            throw new InvalidOperationException($"{tracker.PendingWaiters} waiters pending after registering {Waiters}.");
        }

        double bytesPerWaiter = (after - before) / (double)Waiters;

        start = Stopwatch.GetTimestamp();
        tracker.ReportReplay(new Lsn(Waiters + 1));
        TimeSpan release = Stopwatch.GetElapsedTime(start);
        int ready = 0;
        for (int i = 0; i < Waiters; i++)
        {
            if ((await waits[i].ConfigureAwait(false)).IsReady)
            {
                ready++;
            }
        }

        if (ready != Waiters || tracker.PendingWaiters != 0)
        {
            throw new InvalidOperationException($"Only {ready} of {Waiters} waits were released as ready ({tracker.PendingWaiters} still pending).");
        }

        report.Set("bytes_per_waiter", bytesPerWaiter);
        report.Set("register_1m_ms", register.TotalMilliseconds);
        report.Set("release_1m_ms", release.TotalMilliseconds);
        report.AddRow(new ResultRow(
            "Memory per pending waiter (1 M)", Format.Bytes(bytesPerWaiter), "—", "—", $"≤ {GoalBytes:0} B", bytesPerWaiter <= GoalBytes, "bytes_per_waiter"));
        report.AddRow(new ResultRow(
            "Register / release 1 M waiters", $"{Format.Ms(register.TotalMilliseconds)} / {Format.Ms(release.TotalMilliseconds)}", "—", "—", "—", null));
        report.Note(
            "Waiter memory: push-only tracker, ReportReplay(1), then 1 M RequestAndAwaitAsync(new Lsn(i + 2), 5 min) without a CancellationToken; " +
            "bytes per waiter = (GC.GetTotalMemory(true) after − before) / 1 M, with the 16 MB ValueTask array allocated before the baseline. " +
            "Then one ReportReplay released all of them and every ValueTask was awaited and found ready.");
    }
}
