using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Replication;

namespace OrleansLsn.Bench.Cluster;

/// <summary>Calls per second at a fixed concurrency, waits held at once (silo memory), and streaming through the grain.</summary>
internal static class ClusterLoadScenarios
{
    /// <summary>
    /// <paramref name="concurrency"/> loops each call <paramref name="call"/> back to back for <paramref name="duration"/>;
    /// returns completed calls per second.
    /// </summary>
    public static async Task<double> CallsPerSecondAsync(Func<CancellationToken, Task> call, int concurrency, TimeSpan duration, CancellationToken cancellationToken)
    {
        long completed = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sw = Stopwatch.StartNew();
        stop.CancelAfter(duration);
        Task[] loops = [.. Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await call(stop.Token).ConfigureAwait(false);
                    Interlocked.Increment(ref completed);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
            }
        }, CancellationToken.None))];
        await Task.WhenAll(loops).ConfigureAwait(false);
        return Interlocked.Read(ref completed) / sw.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Pauses replay, issues <paramref name="count"/> waits for an LSN past it, and measures the silo's RSS growth once
    /// every wait is pending in the tracker; then resumes replay and checks every wait comes back Ready.
    /// </summary>
    public static async Task<(double BytesPerWait, double ReleaseSeconds, long RssBefore, long RssPending, long RssAfter)> PendingWaitsAsync(
        ClusterBenchContext context, int count, CancellationToken cancellationToken)
    {
        ILsnTrackerGrain tracker = context.Tracker;
        await using var primary = new NpgsqlConnection(context.Primary);
        await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
        long before = context.Silo.ReadRssBytes();
        await context.Deployment.Postgres.PauseReplayAsync(ClusterBenchContext.Region, cancellationToken).ConfigureAwait(false);
        try
        {
            await using (var cmd = new NpgsqlCommand("create table if not exists bench_cluster_pending(id int); insert into bench_cluster_pending values (1)", primary))
            {
                await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            Lsn lsn = await OrleansLsn.Client.PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken).ConfigureAwait(false);
            var waits = new Task<LsnWaitResult>[count];
            for (int i = 0; i < count; i++)
            {
                waits[i] = tracker.RequestAndAwait(lsn, TimeSpan.FromSeconds(60), cancellationToken);
            }

            var sw = Stopwatch.StartNew();
            while ((await tracker.GetStatus().ConfigureAwait(false)).PendingWaiters < count)
            {
                if (sw.Elapsed > TimeSpan.FromSeconds(50))
                {
                    throw new TimeoutException($"Only {(await tracker.GetStatus().ConfigureAwait(false)).PendingWaiters} of {count} waits became pending within 50 s.");
                }

                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }

            long pending = context.Silo.ReadRssBytes();
            var release = Stopwatch.StartNew();
            await context.Deployment.Postgres.ResumeReplayAsync(ClusterBenchContext.Region, cancellationToken).ConfigureAwait(false);
            LsnWaitResult[] results = await Task.WhenAll(waits).ConfigureAwait(false);
            double releaseSeconds = release.Elapsed.TotalSeconds;
            int notReady = results.Count(r => !r.IsReady);
            if (notReady > 0)
            {
                throw new InvalidOperationException($"{notReady} of {count} waits were not Ready after replay resumed.");
            }

            long after = context.Silo.ReadRssBytes();
            return ((double)(pending - before) / count, releaseSeconds, before, pending, after);
        }
        finally
        {
            await context.Deployment.Postgres.ResumeReplayAsync(ClusterBenchContext.Region, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One streaming run through the grain: subscribes a counting observer (every column of every row read) to the
    /// run's pre-created slot and times until all <paramref name="rows"/> rows were confirmed.
    /// </summary>
    public static async Task<TimeSpan> StreamThroughGrainAsync(ClusterBenchContext context, string slot, int rows, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var observer = new CountingObserver();
        IChangeObserver reference = context.Client.Cluster.CreateObjectReference<IChangeObserver>(observer);
        IReplicationGrain grain = context.Client.Cluster.GetGrain<IReplicationGrain>(slot);
        var sw = Stopwatch.StartNew();
        try
        {
            await grain.Subscribe(reference).ConfigureAwait(false);
            await observer.WaitForAsync(rows, timeout, cancellationToken).ConfigureAwait(false);
            return sw.Elapsed;
        }
        finally
        {
            await grain.Unsubscribe(reference).ConfigureAwait(false);
            context.Client.Cluster.DeleteObjectReference<IChangeObserver>(reference);
            GC.KeepAlive(observer);
        }
    }

    /// <summary>Counts rows and reads every value of every change, as an application would.</summary>
    internal sealed class CountingObserver : IChangeObserver
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _rows;
        private long _chars;
        private long _target = long.MaxValue;
        private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _hold;

        public long Rows => Interlocked.Read(ref _rows);

        /// <summary>Characters of every value read (so the reads cannot be optimised away).</summary>
        public long Chars => Interlocked.Read(ref _chars);

        /// <summary>From now on the next delivery does not complete (nothing is confirmed) until <see cref="Release"/>.</summary>
        public void Hold() => _hold = true;

        public void Release() => _gate.TrySetResult();

        public async Task WaitForAsync(long rows, TimeSpan timeout, CancellationToken cancellationToken)
        {
            Interlocked.Exchange(ref _target, rows);
            if (Rows >= rows)
            {
                return;
            }

            await _reached.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }

        public async Task OnChanges(ChangeBatch batch)
        {
            if (_hold)
            {
                await _gate.Task.ConfigureAwait(false);
            }

            long chars = 0;
            foreach (RowChange change in batch.Changes)
            {
                if (change.NewValues is { } values)
                {
                    for (int i = 0; i < values.Count; i++)
                    {
                        chars += values[i]?.Length ?? 0;
                    }
                }
            }

            Interlocked.Add(ref _chars, chars);
            if (Interlocked.Add(ref _rows, batch.Changes.Count) >= Interlocked.Read(ref _target))
            {
                _reached.TrySetResult();
            }
        }
    }

    /// <summary>The slots of the streaming runs, created before the workload so every run streams the same changes.</summary>
    public static async Task PrepareStreamingAsync(NpgsqlConnection admin, IEnumerable<string> slots, CancellationToken cancellationToken)
    {
        foreach (string slot in slots)
        {
            await ReplicationSql.CreateSlotAsync(admin, slot, cancellationToken).ConfigureAwait(false);
        }
    }
}
