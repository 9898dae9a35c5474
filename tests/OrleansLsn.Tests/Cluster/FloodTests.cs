using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using OrleansLsn.Hosting;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Cluster;

/// <summary>
/// 100 000 waits from one client against one tracker, on a cluster of its own (one silo per region) with the waiter
/// cap at 5 000. Runs alone (memory measurement): the figures are the whole process' managed heap, silos and client.
/// </summary>
[Collection(MemoryMeasurementCollection.Name)]
public sealed class FloodTests(PostgresFixture postgres)
{
    private const int Waits = 100_000;
    private const int Cap = 5_000;
    private const int WarmUpWaits = Waits;

    /// <summary>
    /// Each wait's own timeout. How many waits are pending at once is the tracker's intake rate times how long a wait
    /// stays, so the cap must be reached at the slowest intake seen, not only the usual one: 2 s with a cap of 20 000
    /// reached it on a quiet machine (about 6 000 calls/s) and missed it (peak 17 684) with two suites running at once.
    /// 5 s with a cap of 5 000 leaves a wide margin at 1 000 calls/s.
    /// </summary>
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long every answer of a flood may take to arrive (the slowest intake seen: 100 000 calls in 100 s).</summary>
    private static readonly TimeSpan FloodBound = TimeSpan.FromSeconds(150);

    /// <summary>
    /// How far above its baseline the managed heap may stay once every wait has ended. The flood's own objects (the
    /// waiters, their Orleans messages and tasks) are about 1.7 KB per pending wait, so leaked waiters would keep 8.5 MB at
    /// the cap (not caught by this bound) and 170 MB for the whole flood (the timed-out and cancelled ones, caught). What legitimately stays is what grew with the load and does not shrink
    /// (collections' capacities, Orleans' message and buffer pools, the thread pool's queues): the warm-up flood is as
    /// large as the measured one, so those have reached their size before the baseline. Measured on this 2-core machine,
    /// the test alone: 0.6 to 35 MB right after the flood (gen2 and LOH) and about 0 once the answers still in flight
    /// were gone (within 16 s); 61.6 MB once in a CI run with a 30 000-wait warm-up and a single sample each, which is
    /// why both the baseline and the heap after the flood are now sampled until they settle.
    /// </summary>
    private const long HeapToleranceBytes = 48L * 1024 * 1024;

    /// <summary>
    /// The longest a status call may take during the flood. The client fires 100 000 calls at once and the activation
    /// takes its messages in arrival order (reentrancy lets them interleave, not overtake), so a status call queues
    /// behind the calls that arrived first: measured 12 to 42 s on this shared 2-core machine (2 400 to 6 000 calls/s
    /// through the silo, depending on the other load; 41.7 s in a CI run with the whole suite beside it). The bound says the tracker keeps answering under the flood (and
    /// the test also requires a status call answered while waits were pending); it is no latency target.
    /// </summary>
    private static readonly TimeSpan StatusBound = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task HundredThousandWaits_AllAnswered_TrackerResponsive_AndNothingLeftBehind()
    {
        await using InProcessTestCluster cluster = await LsnTestCluster.StartAsync(postgres, [LsnTestCluster.EuWest, LsnTestCluster.UsEast], [], settings =>
            settings["OrleansLsn:Tracker:MaxPendingWaiters"] = Cap.ToString(System.Globalization.CultureInfo.InvariantCulture),
            // Orleans' 30 s default would end a queued status call before the test's own bound is checked.
            responseTimeout: StatusBound + TimeSpan.FromSeconds(20));
        ILsnTrackerGrain tracker = cluster.Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest);
        await Wait.UntilAsync(async () => (await tracker.GetStatus()).Health == TrackerHealthStatus.Healthy, TimeSpan.FromSeconds(20), () => "a healthy tracker");

        // Warm up every path (timeout, cancellation, cap) so that JIT and first-use allocations are in the baseline.
        // The pending count is sampled from the silo's engines directly: a status call queues behind the flood and may
        // only get its turn once the waits have ended, so it cannot be what proves that waits were pending at the cap.
        SiloEngines[] engines = [.. cluster.Silos.Select(s => s.ServiceProvider.GetRequiredService<SiloEngines>())];
        long pristine = FullCollection();
        FloodResult warm = await RunFloodAsync(tracker, WarmUpWaits, WaitTimeout);
        Assert.True(warm.Other.Count == 0, $"unexpected answers in the warm-up: {string.Join("; ", warm.Other.Take(5))}");
        await Wait.UntilAsync(() => Pending(engines) == 0, TimeSpan.FromSeconds(30), () => $"no waiter after the warm-up (have {Pending(engines)})");
        // The baseline is the lowest heap over a few seconds: right after a flood it still holds answers in flight.
        (long baseline, _) = await HeapSettledAsync(limit: 0, TimeSpan.FromSeconds(10));
        string baselineGenerations = Generations();
        TestContext.Current.TestOutputHelper?.WriteLine($"pristine {pristine / 1048576.0:0.0} MB, after a first flood {baseline / 1048576.0:0.0} MB ({warm.TimedOut}/{warm.Cancelled}/{warm.Capped})");

        var sw = Stopwatch.StartNew();
        using var probing = new CancellationTokenSource();
        // Probed through a silo's own grain factory: the client's connection carries the flood's queue of 100 000 calls in
        // order, so a probe from the client measures that queue; from a silo it measures the tracker's turn.
        IGrainFactory siloFactory = cluster.Silos[1].ServiceProvider.GetRequiredService<IGrainFactory>();
        Task<int> pending = SamplePendingAsync(engines, probing.Token);
        Task<(TimeSpan Max, int Probes, int PeakPending, long PeakHeap)> probe = ProbeAsync(siloFactory.GetGrain<ILsnTrackerGrain>(LsnTestCluster.EuWest), probing.Token);
        FloodResult result = await RunFloodAsync(tracker, Waits, WaitTimeout);
        TimeSpan flood = sw.Elapsed;
        await probing.CancelAsync();
        (TimeSpan maxStatus, int probes, int peakStatusPending, long peakHeap) = await probe;
        int peakPending = await pending;
        await Wait.UntilAsync(() => Pending(engines) == 0, TimeSpan.FromSeconds(30), () => $"no waiter after the flood (have {Pending(engines)})");
        (long after, TimeSpan settled) = await HeapSettledAsync(baseline + HeapToleranceBytes, TimeSpan.FromSeconds(30));
        string afterGenerations = Generations();

        string figures = $"flood {flood.TotalSeconds:0.0} s: {result.TimedOut} timed out, {result.Cancelled} cancelled, {result.Capped} refused at the cap; " +
            $"status calls {probes}, slowest {maxStatus.TotalMilliseconds:0} ms, peak pending {peakPending} (seen by a status call {peakStatusPending}); managed heap baseline {baseline / 1048576.0:0.0} MB, " +
            $"peak {peakHeap / 1048576.0:0.0} MB, after {after / 1048576.0:0.0} MB {settled.TotalSeconds:0.0} s after no wait was pending (gen0/gen1/gen2/LOH/POH MB: baseline {baselineGenerations}, after {afterGenerations})";
        TestContext.Current.TestOutputHelper?.WriteLine(figures);
        Assert.True(result.Other.Count == 0, $"unexpected answers: {string.Join("; ", result.Other.Take(5))} ({figures})");
        Assert.Equal(Waits, result.TimedOut + result.Cancelled + result.Capped);
        Assert.True(result.TimedOut > 0 && result.Cancelled > 0 && result.Capped > 0, figures);
        Assert.True(peakPending <= Cap && peakStatusPending <= Cap, figures);
        Assert.True(peakPending > 0, $"no wait was ever pending ({figures})");
        Assert.True(probes >= 3, $"too few status calls during the flood to judge responsiveness ({figures})");
        Assert.True(maxStatus < StatusBound, $"a status call took longer than {StatusBound.TotalSeconds} s ({figures})");
        Assert.True(after - baseline < HeapToleranceBytes, $"the heap stayed {(after - baseline) / 1048576.0:0.0} MB above its baseline ({figures})");
        Assert.Equal(LsnWaitOutcome.Ready, (await tracker.RequestAndAwait(Lsn.FromUInt64(1), TimeSpan.FromSeconds(5), Ct)).Outcome);
    }

    private static async Task<FloodResult> RunFloodAsync(ILsnTrackerGrain tracker, int count, TimeSpan timeout)
    {
        // Every third wait carries a token that is cancelled a moment after the flood is issued; the rest time out or hit the cap.
        using var cancel = new CancellationTokenSource();
        var waits = new Task<LsnWaitResult>[count];
        for (int i = 0; i < count; i++)
        {
            waits[i] = tracker.RequestAndAwait(Lsn.MaxValue, timeout, i % 3 == 0 ? cancel.Token : CancellationToken.None);
        }

        await cancel.CancelAsync();
        var result = new FloodResult();
        try
        {
            await Task.WhenAll(waits).WaitAsync(FloodBound, Ct);
        }
#pragma warning disable CA1031 // Every answer is classified below.
        catch (Exception) when (waits.Any(w => w.IsFaulted || w.IsCanceled))
#pragma warning restore CA1031
        {
        }

        foreach (Task<LsnWaitResult> wait in waits)
        {
            if (!wait.IsCompleted)
            {
                result.Other.Add($"no answer within {FloodBound.TotalSeconds} s");
            }
            else if (wait.IsCanceled || wait.Exception?.InnerException is OperationCanceledException)
            {
                result.Cancelled++;
            }
            else if (wait.Exception?.InnerException is LimitExceededException { Key: "OrleansLsn:Tracker:MaxPendingWaiters" })
            {
                result.Capped++;
            }
            else if (wait.IsCompletedSuccessfully && wait.Result.Outcome == LsnWaitOutcome.TimedOut)
            {
                result.TimedOut++;
            }
            else
            {
                result.Other.Add(wait.IsCompletedSuccessfully ? wait.Result.ToString() : wait.Exception!.InnerException!.GetType().Name + ": " + wait.Exception.InnerException.Message);
            }
        }

        return result;
    }

    private static async Task<(TimeSpan Max, int Probes, int PeakPending, long PeakHeap)> ProbeAsync(ILsnTrackerGrain tracker, CancellationToken stop)
    {
        TimeSpan max = TimeSpan.Zero;
        int probes = 0;
        int peak = 0;
        long heap = 0;
        while (!stop.IsCancellationRequested)
        {
            var sw = Stopwatch.StartNew();
            LsnTrackerStatus status = await tracker.GetStatus();
            max = sw.Elapsed > max ? sw.Elapsed : max;
            probes++;
            peak = Math.Max(peak, status.PendingWaiters);
            heap = Math.Max(heap, GC.GetTotalMemory(false));
            await Task.Delay(50, CancellationToken.None);
        }

        return (max, probes, peak, heap);
    }

    private static async Task<int> SamplePendingAsync(SiloEngines[] engines, CancellationToken stop)
    {
        int peak = 0;
        while (!stop.IsCancellationRequested)
        {
            peak = Math.Max(peak, Pending(engines));
            await Task.Delay(10, CancellationToken.None);
        }

        return peak;
    }

    /// <summary>The most waits pending on one tracker of the silos' engines, read without a grain call.</summary>
    private static int Pending(SiloEngines[] engines) =>
        engines.SelectMany(e => e.Trackers).Select(t => t.PendingWaiters).DefaultIfEmpty(0).Max();

    private static long FullCollection()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }

        return GC.GetTotalMemory(forceFullCollection: true);
    }

    /// <summary>
    /// The managed heap after full collections, sampled until it is below <paramref name="limit"/> or
    /// <paramref name="within"/> has passed: the lowest sample, and when it was taken. Answers still on their way
    /// (responses, cancellation messages, the client's callbacks) are gone after a while; leaked waiters never are.
    /// </summary>
    private static async Task<(long Heap, TimeSpan At)> HeapSettledAsync(long limit, TimeSpan within)
    {
        var sw = Stopwatch.StartNew();
        long lowest = long.MaxValue;
        TimeSpan at = TimeSpan.Zero;
        while (true)
        {
            long heap = FullCollection();
            if (heap < lowest)
            {
                (lowest, at) = (heap, sw.Elapsed);
            }

            if (lowest < limit || sw.Elapsed > within)
            {
                return (lowest, at);
            }

            await Task.Delay(TimeSpan.FromMilliseconds(500), CancellationToken.None);
        }
    }

    /// <summary>The managed heap by generation after the last collection (gen0, gen1, gen2, LOH, POH), in MB.</summary>
    private static string Generations()
    {
        GCMemoryInfo info = GC.GetGCMemoryInfo(GCKind.Any);
        return string.Join("/", Enumerable.Range(0, info.GenerationInfo.Length).Select(i => (info.GenerationInfo[i].SizeAfterBytes / 1048576.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)));
    }

    private sealed class FloodResult
    {
        internal int TimedOut { get; set; }

        internal int Cancelled { get; set; }

        internal int Capped { get; set; }

        internal List<string> Other { get; } = new();
    }
}
