using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Common;
using OrleansLsn.Replication;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// Streaming throughput on the same workload: one transaction inserting <see cref="ReplicationBenchContext.Rows"/> rows
/// of <c>(id bigint primary key, payload text, n int, ts timestamptz)</c>, streamed by the pump (every column decoded,
/// the subscriber counts rows and confirms), by <c>pg_recvlogical</c> (pgoutput to /dev/null; the anchor) and by a plain
/// Npgsql loop (reference). Every run has its own slot, created before the workload, so every run streams the same
/// changes; runs go one at a time, alternating consumers, and each consumer's median is reported.
/// </summary>
internal static class ThroughputScenario
{
    private const string Table = "bench_rows";
    private const string Publication = "bench_pub";
    private const string PumpApplication = "bench-pump-throughput";
    private const int WarmupRows = 50_000;

    private enum Consumer
    {
        Pump,
        PgRecvLogical,
        NpgsqlLoop,
    }

    public static async Task RunAsync(ReplicationBenchContext context, BenchReport report, CancellationToken cancellationToken)
    {
        Consumer[] consumers = Enum.GetValues<Consumer>();
        string[] slots = [.. consumers.SelectMany(c => Enumerable.Range(1, context.Runs).Select(r => SlotName(c, r)))];
        string[] allSlots = [.. slots, SlotName(Consumer.Pump, 0), SlotName(Consumer.NpgsqlLoop, 0)];
        await using var admin = new NpgsqlConnection(context.Primary);
        await admin.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ReplicationSql.DropAsync(admin, allSlots, [Publication], [Table], cancellationToken).ConfigureAwait(false);
        try
        {
            await ReplicationSql.ExecuteAsync(admin, $"create table {Table} (id bigint primary key, payload text, n int, ts timestamptz)", cancellationToken)
                .ConfigureAwait(false);
            await ReplicationSql.ExecuteAsync(admin, $"create publication {Publication} for table {Table}", cancellationToken).ConfigureAwait(false);
            TimeSpan warmup = await WarmUpAsync(context, admin, cancellationToken).ConfigureAwait(false);
            foreach (string slot in slots)
            {
                await ReplicationSql.CreateSlotAsync(admin, slot, cancellationToken).ConfigureAwait(false);
            }

            Lsn before = await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false);
            long writeStart = Stopwatch.GetTimestamp();
            await ReplicationSql.ExecuteAsync(
                admin,
                $"insert into {Table} select g, md5(g::text) || md5((-g)::text), (g % 100000)::int, now() + g * interval '1 ms' " +
                "from generate_series(1, $1::bigint) g",
                cancellationToken,
                (long)context.Rows).ConfigureAwait(false);
            TimeSpan write = Stopwatch.GetElapsedTime(writeStart);
            Lsn end = await ReplicationSql.CurrentWalLsnAsync(admin, cancellationToken).ConfigureAwait(false);

            // Generous: the anchor figures are 7.3 s (pg_recvlogical) and 4.3–5.7 s (Npgsql) per million rows here.
            TimeSpan timeout = TimeSpan.FromSeconds(60 + (context.Rows / 10_000));
            PgRecvLogical recvlogical = context.RecvLogical;
            string? localPrimary = context.IsLocal ? context.Primary : null;
            var runs = consumers.ToDictionary(c => c, _ => new List<Run>());
            for (int run = 1; run <= context.Runs; run++)
            {
                for (int k = 0; k < consumers.Length; k++)
                {
                    // Rotate which consumer goes first, so that none always streams right after the same one.
                    Consumer consumer = consumers[(run - 1 + k) % consumers.Length];
                    string slot = SlotName(consumer, run);
                    await using RunCpuMeter cpu = RunCpuMeter.Start(localPrimary, ApplicationName(consumer));
                    TimeSpan elapsed = consumer switch
                    {
                        Consumer.Pump => await RunPumpAsync(context.Primary, slot, context.Rows, timeout, cancellationToken).ConfigureAwait(false),
                        Consumer.PgRecvLogical => await recvlogical
                            .StreamToDevNullAsync(slot, Publication, context.ProtocolNumber, end, timeout, cancellationToken).ConfigureAwait(false),
                        _ => await PlainPgOutputLoop
                            .StreamAsync(context.Primary, slot, Publication, context.Protocol, context.Rows, timeout, cancellationToken).ConfigureAwait(false),
                    };
                    RunCpuMeter.Result used = await cpu.StopAsync().ConfigureAwait(false);
                    runs[consumer].Add(new Run(
                        elapsed.TotalSeconds,
                        consumer == Consumer.PgRecvLogical ? used.ChildSeconds : used.ClientSeconds,
                        used.WalsenderSeconds,
                        used.MachineBusyPercent));

                    // Frees the WAL and the spilled transaction this slot held.
                    await ReplicationSql.DropAsync(admin, [slot], [], [], cancellationToken).ConfigureAwait(false);
                }
            }

            Record(report, context, runs, write, end - before, warmup);
        }
        finally
        {
            await ReplicationSql.DropAsync(admin, allSlots, [Publication], [Table], CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Streams a small workload once with the pump and the Npgsql loop (run 0, not reported), so that the measured runs use
    /// jitted code rather than the first tier; its rows come before the measured slots exist, so no measured run sees them.
    /// </summary>
    private static async Task<TimeSpan> WarmUpAsync(ReplicationBenchContext context, NpgsqlConnection admin, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        string pumpSlot = SlotName(Consumer.Pump, 0);
        string npgsqlSlot = SlotName(Consumer.NpgsqlLoop, 0);
        await ReplicationSql.CreateSlotAsync(admin, pumpSlot, cancellationToken).ConfigureAwait(false);
        await ReplicationSql.CreateSlotAsync(admin, npgsqlSlot, cancellationToken).ConfigureAwait(false);
        await ReplicationSql.ExecuteAsync(
            admin,
            $"insert into {Table} select -g, md5(g::text) || md5((-g)::text), (g % 100000)::int, now() from generate_series(1, $1::bigint) g",
            cancellationToken,
            (long)WarmupRows).ConfigureAwait(false);
        TimeSpan timeout = TimeSpan.FromSeconds(60);
        _ = await RunPumpAsync(context.Primary, pumpSlot, WarmupRows, timeout, cancellationToken).ConfigureAwait(false);
        _ = await PlainPgOutputLoop.StreamAsync(context.Primary, npgsqlSlot, Publication, context.Protocol, WarmupRows, timeout, cancellationToken)
            .ConfigureAwait(false);
        await ReplicationSql.DropAsync(admin, [pumpSlot, npgsqlSlot], [], [], cancellationToken).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(start);
    }

    private static async Task<TimeSpan> RunPumpAsync(string primary, string slot, long expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var options = new ReplicationPumpOptions
        {
            ConnectionString = primary,
            SlotName = slot,
            PublicationName = Publication,
            CreateSlot = false,
            CreatePublication = false,
            ApplicationName = PumpApplication,
        };
        var count = new RowCount(expected);
        await using var pump = new ReplicationPump(options);
        await using ReplicationSubscription subscription = pump.Subscribe((batch, _) => count.Add(batch), "counter");
        long start = Stopwatch.GetTimestamp();
        pump.Start();
        await PumpWait.ForAsync(pump, count.Done, timeout, $"{expected} rows on slot {slot}", cancellationToken).ConfigureAwait(false);
        TimeSpan elapsed = Stopwatch.GetElapsedTime(start, count.DoneAt);
        if (count.Rows != expected)
        {
            throw new InvalidOperationException($"The pump delivered {count.Rows} rows on slot {slot}, expected exactly {expected}.");
        }

        return elapsed;
    }

    private static void Record(
        BenchReport report, ReplicationBenchContext context, Dictionary<Consumer, List<Run>> runs, TimeSpan write, long walBytes, TimeSpan warmup)
    {
        // Median by the nearest rank, the same statistic for every consumer.
        static double Median(IEnumerable<double> values) => new Percentiles(values).P50;
        double pump = Median(runs[Consumer.Pump].Select(r => r.Seconds));
        double recvlogical = Median(runs[Consumer.PgRecvLogical].Select(r => r.Seconds));
        double npgsql = Median(runs[Consumer.NpgsqlLoop].Select(r => r.Seconds));
        double rows = context.Rows;
        double pumpRate = rows / pump;
        double recvRate = rows / recvlogical;
        double npgsqlRate = rows / npgsql;
        report.Set("rows_per_sec", pumpRate);
        report.Set("pg_recvlogical_rows_per_sec", recvRate);
        report.Set("rows_per_sec_ratio", pumpRate / recvRate);
        report.Set("npgsql_loop_rows_per_sec", npgsqlRate);
        report.Set("pump_vs_npgsql_loop_ratio", pumpRate / npgsqlRate);
        report.Set("throughput_rows", rows);
        report.Set("throughput_runs", context.Runs);
        report.Set("throughput_wal_mb", walBytes / (1024.0 * 1024.0));
        report.Set("throughput_write_s", write.TotalSeconds);
        report.Set("pump_s", pump);
        report.Set("pg_recvlogical_s", recvlogical);
        report.Set("npgsql_loop_s", npgsql);
        foreach ((Consumer consumer, string prefix) in new[] { (Consumer.Pump, "pump"), (Consumer.PgRecvLogical, "pg_recvlogical"), (Consumer.NpgsqlLoop, "npgsql_loop") })
        {
            List<Run> list = runs[consumer];
            report.Set($"{prefix}_runs_s", Indexed(list.Select(r => r.Seconds)));
            report.Set($"{prefix}_client_cpu_s", Median(list.Select(r => r.ClientCpu)));
            if (list.All(r => double.IsFinite(r.WalsenderCpu)))
            {
                report.Set($"{prefix}_walsender_cpu_s", Median(list.Select(r => r.WalsenderCpu)));
            }

            report.Set($"{prefix}_runs_machine_busy_pct", Indexed(list.Select(r => r.MachineBusy)));
        }

        report.AddRow(new ResultRow(
            $"Throughput, {Format.Count(rows)} rows, pump (median of {context.Runs})",
            Format.PerSecond(pumpRate),
            $"pg_recvlogical {Format.PerSecond(recvRate)}",
            Format.Ratio(pumpRate, recvRate),
            "≥ 1.0× pg_recvlogical",
            pumpRate >= recvRate,
            "rows_per_sec"));
        double pumpBest = rows / runs[Consumer.Pump].Min(r => r.Seconds);
        double recvBest = rows / runs[Consumer.PgRecvLogical].Min(r => r.Seconds);
        double npgsqlBest = rows / runs[Consumer.NpgsqlLoop].Min(r => r.Seconds);
        report.Set("rows_per_sec_best", pumpBest);
        report.Set("pg_recvlogical_rows_per_sec_best", recvBest);
        report.Set("npgsql_loop_rows_per_sec_best", npgsqlBest);
        report.AddRow(new ResultRow(
            "Throughput, fastest run of each (reference)",
            Format.PerSecond(pumpBest),
            $"pg_recvlogical {Format.PerSecond(recvBest)}, Npgsql {Format.PerSecond(npgsqlBest)}",
            Format.Ratio(pumpBest, recvBest),
            "— (the goal uses the medians)",
            null));
        report.AddRow(new ResultRow(
            "Throughput, pump vs plain Npgsql loop",
            Format.PerSecond(pumpRate),
            $"Npgsql loop {Format.PerSecond(npgsqlRate)}",
            Format.Ratio(pumpRate, npgsqlRate),
            "— (the pump's own overhead)",
            null));
        report.AddRow(new ResultRow(
            "Time to stream the workload (median)",
            Format.Number(pump, "0.00") + " s",
            $"pg_recvlogical {Format.Number(recvlogical, "0.00")} s, Npgsql {Format.Number(npgsql, "0.00")} s",
            Format.Ratio(pump, recvlogical),
            "—",
            null));
        report.AddRow(new ResultRow(
            "Client CPU per run (median)",
            Format.Number(Median(runs[Consumer.Pump].Select(r => r.ClientCpu)), "0.00") + " s",
            $"pg_recvlogical {Format.Number(Median(runs[Consumer.PgRecvLogical].Select(r => r.ClientCpu)), "0.00")} s, " +
            $"Npgsql {Format.Number(Median(runs[Consumer.NpgsqlLoop].Select(r => r.ClientCpu)), "0.00")} s",
            "—",
            "—",
            null));
        if (runs.Values.SelectMany(r => r).All(r => double.IsFinite(r.WalsenderCpu)))
        {
            report.AddRow(new ResultRow(
                "Walsender CPU per run (median)",
                Format.Number(Median(runs[Consumer.Pump].Select(r => r.WalsenderCpu)), "0.00") + " s",
                $"pg_recvlogical {Format.Number(Median(runs[Consumer.PgRecvLogical].Select(r => r.WalsenderCpu)), "0.00")} s, " +
                $"Npgsql {Format.Number(Median(runs[Consumer.NpgsqlLoop].Select(r => r.WalsenderCpu)), "0.00")} s",
                "—",
                "—",
                null));
        }

        report.Note(
            $"Throughput: one transaction inserted {Format.Count(rows)} rows (id bigint primary key, payload text of 64 chars, n int, ts timestamptz; " +
            $"{Format.Number(walBytes / (1024.0 * 1024.0), "0")} MB of WAL, written in {Format.Number(write.TotalSeconds, "0.0")} s). " +
            $"{context.Runs} runs per consumer, each from its own slot created before the workload, one consumer at a time, the order rotating " +
            "every run; the figure is each consumer's median (nearest rank) time, from starting it (process start, pump.Start(), connection " +
            "open) to the last change: the subscriber's count reaching the row count (pump), the exit at --endpos (pg_recvlogical), the commit " +
            "after the last row (Npgsql loop). Each includes connecting and the server decoding the transaction (spilled to disk past " +
            "logical_decoding_work_mem), which is the same for all three. Before the measured runs, the pump and the Npgsql loop each streamed " +
            $"{Format.Count(WarmupRows)} rows once, unmeasured, so that their code was jitted ({Format.Number(warmup.TotalSeconds, "0.0")} s).");
        report.Note(
            $"Throughput consumers: pump with default options (batches of ≤ 1000 changes, every column decoded to text), subscriber counting " +
            $"rows; pg_recvlogical -o proto_version={context.ProtocolNumber} -o publication_names={Publication} -f /dev/null --no-loop over TCP; " +
            "the plain loop is LogicalReplicationConnection + StartReplication reading every column with await value.Get<string>(). " +
            "Per-run times are in pump_runs_s, pg_recvlogical_runs_s and npgsql_loop_runs_s. ARCHITECTURE.md's anchors for 1M rows in one " +
            "transaction on this kind of machine: pg_recvlogical 7.3 s (137k rows/s), a plain Npgsql loop 4.3–5.7 s (175k–233k rows/s).");
        report.Note(
            "Throughput CPU: client CPU is this process's CPU time during the run (pump, Npgsql loop; it includes the benchmark's own " +
            "100 ms walsender sampling) or pg_recvlogical's (the waited-for child's, from /proc/self/stat); walsender CPU is the serving " +
            "walsender's utime + stime from /proc/<pid>/stat at its last 100 ms sample (local server only). *_runs_machine_busy_pct is the share " +
            "of both cores busy during each run, whoever used them: above ~50% plus the walsender, something else was competing.");
    }

    private static IEnumerable<KeyValuePair<long, double>> Indexed(IEnumerable<double> values) =>
        values.Select((v, i) => new KeyValuePair<long, double>(i + 1, v));

    private static string SlotName(Consumer consumer, int run) => consumer switch
    {
        Consumer.Pump => $"bench_tp_pump_{run}",
        Consumer.PgRecvLogical => $"bench_tp_recv_{run}",
        _ => $"bench_tp_npgsql_{run}",
    };

    private static string ApplicationName(Consumer consumer) => consumer switch
    {
        Consumer.Pump => PumpApplication,
        Consumer.PgRecvLogical => PgRecvLogical.ApplicationName,
        _ => PlainPgOutputLoop.ApplicationName,
    };

    /// <summary>One run of one consumer: wall time, the consumer's CPU, its walsender's CPU (NaN if unknown), machine busy %.</summary>
    private sealed record Run(double Seconds, double ClientCpu, double WalsenderCpu, double MachineBusy);

    /// <summary>The pump subscriber: counts rows and timestamps the batch that completes the expected count.</summary>
    private sealed class RowCount(long expected)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _rows;
        private long _doneAt;

        public Task Done => _done.Task;

        public long Rows => Interlocked.Read(ref _rows);

        /// <summary>The <see cref="Stopwatch"/> timestamp at which the count reached the expected rows.</summary>
        public long DoneAt => Interlocked.Read(ref _doneAt);

        public Task Add(ChangeBatch batch)
        {
            long rows = Interlocked.Add(ref _rows, batch.Changes.Count);
            if (rows >= expected && Interlocked.CompareExchange(ref _doneAt, Stopwatch.GetTimestamp(), 0) == 0)
            {
                _done.TrySetResult();
            }

            return Task.CompletedTask;
        }
    }
}
