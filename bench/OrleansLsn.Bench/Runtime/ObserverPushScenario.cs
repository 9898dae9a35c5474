using System.Diagnostics;
using OrleansLsn.Bench.Common;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// Observer pushes to one client: the client subscribes a <see cref="PushCounter"/> to a publisher grain, calls
/// <see cref="IPushPublisherGrain.PushMany"/> and times from that call to the arrival of the last of its one-way pushes
/// (each number must arrive once). Then the same with awaited pushes, one at a time (a round trip silo → client →
/// silo each). Anchors: a raw TCP stream of as many 8-byte frames (the ceiling for one-way pushes), and the raw echo's
/// round trips per second at concurrency 1 from the call scenario (for awaited pushes).
/// </summary>
internal static class ObserverPushScenario
{
    private const string PublisherKey = "publisher";

    /// <summary>Frames of the raw stream anchor: enough for tens of milliseconds at its rate, whatever the push count.</summary>
    private const int RawFrames = 4_000_000;
    private static readonly TimeSpan RoundLimit = TimeSpan.FromMinutes(2);

    public static async Task RunAsync(RuntimeBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        var counter = new PushCounter();
        IPushObserver observer = context.Client.CreateObjectReference<IPushObserver>(counter);
        IPushPublisherGrain publisher = context.Client.GetGrain<IPushPublisherGrain>(PublisherKey);
        try
        {
            await publisher.Subscribe(observer).ConfigureAwait(false);
            int awaitedCount = Math.Max(1_000, context.Pushes / 10);
            await PushRoundAsync(counter, publisher, Math.Max(1_000, context.Pushes / 10), awaited: false, cancellationToken).ConfigureAwait(false);
            Round oneWay = await PushRoundAsync(counter, publisher, context.Pushes, awaited: false, cancellationToken).ConfigureAwait(false);
            await PushRoundAsync(counter, publisher, Math.Max(100, awaitedCount / 10), awaited: true, cancellationToken).ConfigureAwait(false);
            Round awaited = await PushRoundAsync(counter, publisher, awaitedCount, awaited: true, cancellationToken).ConfigureAwait(false);
            await RawStreamAnchor.MeasureAsync(RawFrames / 10, cancellationToken).ConfigureAwait(false);
            double rawFrames = await RawStreamAnchor.MeasureAsync(RawFrames, cancellationToken).ConfigureAwait(false);
            Record(report, oneWay, awaited, rawFrames);
        }
        finally
        {
            context.Client.DeleteObjectReference<IPushObserver>(counter);
        }
    }

    private static async Task<Round> PushRoundAsync(
        PushCounter counter, IPushPublisherGrain publisher, int count, bool awaited, CancellationToken cancellationToken)
    {
        string what = $"{(awaited ? "awaited" : "one-way")} push round of {count:#,0}";
        counter.Expect(count);
        long start = Stopwatch.GetTimestamp();
        try
        {
            Task call = awaited ? publisher.PushManyAwaited(count) : publisher.PushMany(count);
            await call.WaitAsync(RoundLimit, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new InvalidOperationException(
                $"{what}: the publisher's call failed after {Stopwatch.GetElapsedTime(start).TotalSeconds:0.000} s with {e.GetType().Name}: {e.Message} " +
                $"({counter.Received:#,0} pushes had arrived).",
                e);
        }

        long returned = Stopwatch.GetTimestamp();
        long last;
        try
        {
            last = await counter.AllReceived.WaitAsync(RoundLimit - Stopwatch.GetElapsedTime(start), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException(
                $"{what}: only {counter.Received:#,0} distinct pushes arrived within {RoundLimit.TotalSeconds:0} s " +
                $"(the publisher's call returned after {Stopwatch.GetElapsedTime(start, returned).TotalSeconds:0.000} s; duplicates {counter.Duplicates}).");
        }

        return new Round(count, Stopwatch.GetElapsedTime(start, last).TotalSeconds, Stopwatch.GetElapsedTime(start, returned).TotalSeconds,
            counter.Reordered, counter.Duplicates + counter.OutOfRange);
    }

    private static void Record(BenchReport report, Round oneWay, Round awaited, double rawFrames)
    {
        report.Set("observer_pushes_per_sec", oneWay.PerSecond);
        report.Set("observer_pushes", oneWay.Count);
        report.Set("observer_push_call_returned_s", oneWay.CallSeconds);
        report.Set("observer_push_last_arrived_s", oneWay.Seconds);
        report.Set("observer_pushes_reordered", oneWay.Reordered);
        report.Set("observer_pushes_unexpected", oneWay.Unexpected);
        report.Set("observer_awaited_pushes_per_sec", awaited.PerSecond);
        report.Set("observer_awaited_pushes", awaited.Count);
        report.Set("raw_stream_frames_per_sec", rawFrames);

        report.AddRow(new ResultRow(
            "Observer one-way pushes/s to 1 client (anchor: raw TCP stream)", Format.PerSecond(oneWay.PerSecond), Format.PerSecond(rawFrames),
            Format.Ratio(oneWay.PerSecond, rawFrames), "info (no goal set)", null));

        double? echoC1 = report.Values["echo_calls_per_sec_c1"]?.GetValue<double>();
        report.AddRow(new ResultRow(
            "Observer awaited pushes/s, 1 at a time (anchor: raw echo c=1)", Format.PerSecond(awaited.PerSecond),
            echoC1 is { } e ? Format.PerSecond(e) : "—", echoC1 is { } r ? Format.Ratio(awaited.PerSecond, r) : "—", "info (optional)", null));
        report.AddRow(new ResultRow(
            "One-way pushes that arrived after a higher number", $"{Format.Count(oneWay.Reordered)} of {Format.Count(oneWay.Count)}", "—", "—",
            "info (Orleans does not order them either)", null));
        report.Note(
            $"Observer pushes: one client observer (CreateObjectReference) subscribed to one publisher grain; PushMany({oneWay.Count:#,0}) makes that many " +
            "[OneWay] OnPush calls on the observer reference, awaiting one only while the connection's send queue is full. Rate = pushes / time from " +
            $"the client's PushMany call to the last push's arrival in the observer ({oneWay.Seconds:0.000} s; the grain's call returned after " +
            $"{oneWay.CallSeconds:0.000} s). Every number 0..n-1 arrived exactly once (unexpected: {oneWay.Unexpected}); {oneWay.Reordered:#,0} arrived after a " +
            "higher number, because the client runs each observer call as its own thread-pool work item. After a warm-up round of a tenth.");
        report.Note(
            $"Awaited pushes: PushManyAwaited({awaited.Count:#,0}) awaits each OnPushAwaited in turn, so the rate is the silo → client → silo round trip. " +
            $"Raw TCP stream anchor: {RawFrames:#,0} frames of 4-byte length + 8-byte number written through a PipeWriter (flush every 64 KiB) " +
            "and parsed by a PipeReader on one loopback connection: the transport's ceiling, with no per-message work.");
    }

    private sealed record Round(int Count, double Seconds, double CallSeconds, long Reordered, long Unexpected)
    {
        public double PerSecond => Count / Seconds;
    }
}
