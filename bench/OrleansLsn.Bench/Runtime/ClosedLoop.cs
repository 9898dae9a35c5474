using System.Diagnostics;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// A closed-loop load: N workers, each making one call at a time, back to back. They run through a warm-up and then a
/// measured window; a call counts if it completes inside the window (so throughput is completions per second of
/// window), and its latency is from just before the call to just after its result, in <see cref="Stopwatch"/> ticks.
/// The first failing call stops the run, and so does a worker still busy long after the window (a hang).
/// </summary>
internal static class ClosedLoop
{
    /// <param name="workers">One call delegate per worker; each returns the echoed payload.</param>
    /// <param name="payloadBytes">The payload size every reply must have.</param>
    /// <param name="warmup">Unmeasured run before the window.</param>
    /// <param name="duration">The measured window.</param>
    /// <param name="drainLimit">How long the workers may take to finish their last call after the window.</param>
    /// <param name="what">What is measured, for error messages.</param>
    /// <param name="probe">A counter read at the window's start and end (e.g. invocations on the server side), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    /// <exception cref="InvalidOperationException">A call failed, or calls were still pending after <paramref name="drainLimit"/>.</exception>
    public static async Task<LoadResult> RunAsync(
        IReadOnlyList<Func<ValueTask<byte[]>>> workers,
        int payloadBytes,
        TimeSpan warmup,
        TimeSpan duration,
        TimeSpan drainLimit,
        string what,
        Func<long>? probe,
        CancellationToken cancellationToken)
    {
        var window = new Window();
        var samples = new List<long>[workers.Count];
        var tasks = new Task[workers.Count];
        for (int i = 0; i < workers.Count; i++)
        {
            samples[i] = new List<long>(1024);
            tasks[i] = WorkerAsync(workers[i], payloadBytes, window, samples[i]);
        }

        long begun = Stopwatch.GetTimestamp();
        await Task.WhenAny(Task.Delay(warmup, cancellationToken), window.Failed).ConfigureAwait(false);
        long probeStart = probe?.Invoke() ?? 0;
        long start = Stopwatch.GetTimestamp();
        Volatile.Write(ref window.Start, start);
        await Task.WhenAny(Task.Delay(duration, cancellationToken), window.Failed).ConfigureAwait(false);
        long end = Stopwatch.GetTimestamp();
        Volatile.Write(ref window.End, end);
        long? probed = probe is null ? null : probe() - probeStart;
        Volatile.Write(ref window.Stopping, true);

        Task all = Task.WhenAll(tasks);
        try
        {
            await all.WaitAsync(drainLimit, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            int stuck = tasks.Count(t => !t.IsCompleted);
            throw new InvalidOperationException(
                $"{what}: {stuck} of {workers.Count} workers were still waiting for a call {drainLimit.TotalSeconds:0} s after the window closed " +
                $"(calls completed in the window: {samples.Sum(s => s.Count):#,0}); the calls hung.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (window.FirstError is { } error)
        {
            double after = Stopwatch.GetElapsedTime(begun, window.FailedAt).TotalSeconds;
            throw new InvalidOperationException(
                $"{what}: a call failed {after:0.000} s into the run ({(window.FailedAt < start ? "warm-up" : "measured window")}); " +
                $"{window.Failures} worker(s) failed, {samples.Sum(s => s.Count):#,0} calls had completed in the window. First failure: " +
                $"{error.GetType().Name}: {error.Message}",
                error);
        }

        double seconds = Stopwatch.GetElapsedTime(start, end).TotalSeconds;
        double toMicroseconds = 1_000_000.0 / Stopwatch.Frequency;
        var latencies = new double[samples.Sum(s => s.Count)];
        int k = 0;
        foreach (List<long> worker in samples)
        {
            foreach (long ticks in worker)
            {
                latencies[k++] = ticks * toMicroseconds;
            }
        }

        return new LoadResult(workers.Count, latencies.Length, seconds, latencies, probed);
    }

    private static async Task WorkerAsync(Func<ValueTask<byte[]>> call, int payloadBytes, Window window, List<long> samples)
    {
        // Start every worker on the thread pool, not inline in the loop that creates them.
        await Task.Yield();
        try
        {
            while (!Volatile.Read(ref window.Stopping))
            {
                long before = Stopwatch.GetTimestamp();
                byte[] reply = await call().ConfigureAwait(false);
                long after = Stopwatch.GetTimestamp();
                if (reply.Length != payloadBytes)
                {
                    throw new InvalidDataException($"A reply had {reply.Length} bytes instead of {payloadBytes}.");
                }

                if (after >= Volatile.Read(ref window.Start) && after < Volatile.Read(ref window.End))
                {
                    samples.Add(after - before);
                }
            }
        }
#pragma warning disable CA1031 // Recorded and reported by RunAsync with the counts.
        catch (Exception e)
#pragma warning restore CA1031
        {
            window.Fail(e);
        }
    }

    /// <summary>The window's bounds (Stopwatch timestamps) and the run's failures, shared by the workers.</summary>
    private sealed class Window
    {
        // Plain fields, read and written with Volatile by the workers and RunAsync.
        public long Start = long.MaxValue;
        public long End = long.MaxValue;
        public bool Stopping;

        private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Exception? _firstError;
        private int _failures;

        public Task Failed => _failed.Task;

        public Exception? FirstError => Volatile.Read(ref _firstError);

        public int Failures => Volatile.Read(ref _failures);

        public long FailedAt { get; private set; }

        public void Fail(Exception error)
        {
            Interlocked.Increment(ref _failures);
            if (Interlocked.CompareExchange(ref _firstError, error, null) is null)
            {
                FailedAt = Stopwatch.GetTimestamp();
                Volatile.Write(ref Stopping, true);
                _failed.TrySetResult();
            }
        }
    }
}
