using System.Diagnostics;
using Npgsql;
using NpgsqlTypes;
using OrleansLsn.Bench.Common;
using OrleansLsn.Client;

namespace OrleansLsn.Bench.Cluster;

/// <summary>
/// End-to-end wake latency through the cluster: an autocommit insert on the primary (t0 = when it returns), the LSN to
/// wait for, then one of these sides, rotating every round so none always follows the same one: the client's
/// <see cref="ILsnTrackerGrain.RequestAndAwait"/> (client → gateway silo → grain → engine → standby and back), the
/// limit (this process polls the standby itself back to back with a prepared query), an Orleans ping (a call of
/// <see cref="ILsnTrackerGrain.GetLastReplay"/>, which returns a cached field: Orleans' own round trip through the same
/// client and gateway; timed on its own, not from a commit), and Fly's algorithm as its users run it (v0.3: one loop on
/// its own connection that checks the replay position and sleeps 50 ms between checks; the waiter is released when the
/// loop sees its LSN), and the client's replay view (<see cref="ReplayView.WaitAsync"/>: a local waiter, released by
/// the tracker's push once its demand is met). Then the same with the tracker busy: another wait for a far LSN is
/// pending throughout.
/// </summary>
internal static class ClusterWakeScenario
{
    private const string Table = "bench_cluster_wake";
    private static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(5);

    private enum Side
    {
        Ours,
        Limit,
        Ping,
        Fly,
        View,
    }

    public static async Task<WakeFigures> MeasureAsync(ClusterBenchContext context, int samples, bool withFlyAndBusy, CancellationToken cancellationToken)
    {
        int warmup = context.Quick ? 20 : 100;
        await using var primary = new NpgsqlConnection(context.Primary);
        await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(primary, $"drop table if exists {Table}; create table {Table} (id bigserial primary key, n int not null)", cancellationToken).ConfigureAwait(false);
        await OrleansLsn.PostgresLocal.ReplicaControl.WaitForCatchUpAsync(context.Primary, context.Standby, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        await using var insert = new NpgsqlCommand($"insert into {Table} (n) values ($1)", primary);
        var value = new NpgsqlParameter<int> { NpgsqlDbType = NpgsqlDbType.Integer };
        insert.Parameters.Add(value);
        await insert.PrepareAsync(cancellationToken).ConfigureAwait(false);

        await using var standby = new NpgsqlConnection(context.Standby);
        await standby.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var probe = new NpgsqlCommand("select pg_last_wal_replay_lsn() >= $1::pg_lsn", standby);
        var target = new NpgsqlParameter<NpgsqlLogSequenceNumber> { NpgsqlDbType = NpgsqlDbType.PgLsn };
        probe.Parameters.Add(target);
        await probe.PrepareAsync(cancellationToken).ConfigureAwait(false);

        ILsnTrackerGrain tracker = context.Tracker;
        await tracker.IsReplicated(Lsn.Parse("0/1")).ConfigureAwait(false);
        ReplayView view = context.Views.Get(ClusterBenchContext.Region);
        await using FlyLoop? fly = withFlyAndBusy ? await FlyLoop.StartAsync(context.Standby, cancellationToken).ConfigureAwait(false) : null;
        Side[] sides = withFlyAndBusy ? [Side.Ours, Side.Limit, Side.Ping, Side.Fly, Side.View] : [Side.Ours, Side.Limit, Side.Ping];
        var idle = sides.ToDictionary(s => s, _ => new List<double>(samples));
        int counter = 0;
        for (int round = 0; round < warmup + samples; round++)
        {
            for (int k = 0; k < sides.Length; k++)
            {
                Side side = sides[(round + k) % sides.Length];
                double ms = side == Side.Ping
                    ? await PingAsync(tracker, cancellationToken).ConfigureAwait(false)
                    : await CommitAndWaitAsync(side, insert, value, counter++, primary, tracker, view, probe, target, fly, cancellationToken).ConfigureAwait(false);
                if (round >= warmup)
                {
                    idle[side].Add(ms);
                }
            }
        }

        Dictionary<Side, List<double>>? busy = null;
        if (withFlyAndBusy)
        {
            // The busy tracker: one wait for a position the standby will not reach is pending the whole time.
            Lsn far = (await tracker.GetLastReplay().ConfigureAwait(false) ?? throw new InvalidOperationException("The tracker has no replay position.")).Add(1UL << 40);
            using var stopBusy = new CancellationTokenSource();
            Task background = KeepWaitingAsync(tracker, far, stopBusy.Token);
            await WaitUntilPendingAsync(tracker, cancellationToken).ConfigureAwait(false);
            Side[] busySides = [Side.Ours, Side.Limit, Side.View];
            busy = busySides.ToDictionary(s => s, _ => new List<double>(samples));
            for (int round = 0; round < warmup + samples; round++)
            {
                for (int k = 0; k < busySides.Length; k++)
                {
                    Side side = busySides[(round + k) % busySides.Length];
                    double ms = await CommitAndWaitAsync(side, insert, value, counter++, primary, tracker, view, probe, target, null, cancellationToken).ConfigureAwait(false);
                    if (round >= warmup)
                    {
                        busy[side].Add(ms);
                    }
                }
            }

            await stopBusy.CancelAsync().ConfigureAwait(false);
            await background.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await ExecuteAsync(primary, $"drop table if exists {Table}", CancellationToken.None).ConfigureAwait(false);
        return new WakeFigures(
            new Percentiles(idle[Side.Ours]),
            new Percentiles(idle[Side.Limit]),
            new Percentiles(idle[Side.Ping]),
            withFlyAndBusy ? new Percentiles(idle[Side.Fly]) : null,
            busy is null ? null : new Percentiles(busy[Side.Ours]),
            busy is null ? null : new Percentiles(busy[Side.Limit]),
            withFlyAndBusy ? new Percentiles(idle[Side.View]) : null,
            busy is null ? null : new Percentiles(busy[Side.View]));
    }

    private static async Task<double> CommitAndWaitAsync(
        Side side,
        NpgsqlCommand insert,
        NpgsqlParameter<int> value,
        int n,
        NpgsqlConnection primary,
        ILsnTrackerGrain tracker,
        ReplayView view,
        NpgsqlCommand probe,
        NpgsqlParameter<NpgsqlLogSequenceNumber> target,
        FlyLoop? fly,
        CancellationToken cancellationToken)
    {
        value.TypedValue = n;
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        long t0 = Stopwatch.GetTimestamp();
        Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, cancellationToken).ConfigureAwait(false);
        switch (side)
        {
            case Side.Ours:
                using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    deadline.CancelAfter(WaitLimit + TimeSpan.FromSeconds(2));
                    LsnWaitResult result = await tracker.RequestAndAwait(lsn, WaitLimit, deadline.Token).ConfigureAwait(false);
                    if (!result.IsReady)
                    {
                        throw new InvalidOperationException($"The tracker grain did not release a wait for {lsn} within {WaitLimit.TotalSeconds} s (replay {result.ReplayLsn}).");
                    }
                }

                break;
            case Side.View:
                LsnWaitResult local = await view.WaitAsync(lsn, WaitLimit, cancellationToken).ConfigureAwait(false);
                if (!local.IsReady)
                {
                    throw new InvalidOperationException($"The replay view did not release a wait for {lsn} within {WaitLimit.TotalSeconds} s (replay {local.ReplayLsn}).");
                }

                break;
            case Side.Limit:
                target.TypedValue = new NpgsqlLogSequenceNumber(lsn.Value);
                while (await probe.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
                {
                    if (Stopwatch.GetElapsedTime(t0) > WaitLimit)
                    {
                        throw new InvalidOperationException($"The standby did not replay {lsn} within {WaitLimit.TotalSeconds} s.");
                    }
                }

                break;
            default:
                await fly!.WaitAsync(lsn, WaitLimit, cancellationToken).ConfigureAwait(false);
                break;
        }

        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private static async Task<double> PingAsync(ILsnTrackerGrain tracker, CancellationToken cancellationToken)
    {
        long t0 = Stopwatch.GetTimestamp();
        await tracker.GetLastReplay().WaitAsync(cancellationToken).ConfigureAwait(false);
        return Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }

    private static async Task KeepWaitingAsync(ILsnTrackerGrain tracker, Lsn far, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await tracker.RequestAndAwait(far, TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private static async Task WaitUntilPendingAsync(ILsnTrackerGrain tracker, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        while ((await tracker.GetStatus().ConfigureAwait(false)).PendingWaiters < 1)
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new InvalidOperationException("The busy tracker's background wait never became pending.");
            }

            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>What <see cref="ClusterWakeScenario"/> measured, in milliseconds.</summary>
internal sealed record WakeFigures(Percentiles Ours, Percentiles Limit, Percentiles Ping, Percentiles? Fly, Percentiles? OursBusy, Percentiles? LimitBusy, Percentiles? View, Percentiles? ViewBusy);
