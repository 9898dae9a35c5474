using System.Diagnostics;
using System.Text.Json.Nodes;
using OrleansLsn.Bench.Common;

namespace OrleansLsn.Bench.Web;

/// <summary>
/// One policy at one replay lag: <see cref="Load.Users"/> virtual users arriving at a steady rate, each writing once and
/// reading back at once and at think times spread over the next <see cref="Load.Spread"/>; every read is checked.
/// </summary>
internal sealed class PolicyRun
{
    private PolicyRun(string policy, List<ReadSample> reads, TimeSpan wall)
    {
        Policy = policy;
        Reads = reads;
        Wall = wall;
        Stale = reads.Count(r => !r.Found);
        Replica = reads.Count(r => WebPolicy.ReadReplica(r.Outcome) == true);
        PrimaryReads = reads.Count(r => WebPolicy.ReadReplica(r.Outcome) == false);
        Latency = new Percentiles(reads.Select(r => r.LatencyMs));
        AtOnce = new Percentiles(reads.Where(r => r.AtOnce).Select(r => r.LatencyMs));
    }

    public string Policy { get; }

    public IReadOnlyList<ReadSample> Reads { get; }

    /// <summary>From the first user's start to the last user's last read.</summary>
    public TimeSpan Wall { get; }

    /// <summary>Reads that missed the user's own write.</summary>
    public int Stale { get; }

    public int Replica { get; }

    public int PrimaryReads { get; }

    public double ReplicaShare => (double)Replica / Reads.Count;

    public double PrimaryReadsPerSecond => PrimaryReads / Wall.TotalSeconds;

    public Percentiles Latency { get; }

    /// <summary>The reads right after the redirect only.</summary>
    public Percentiles AtOnce { get; }

    /// <summary>Runs the users against <paramref name="app"/>; a user that fails fails the run (after every user ended).</summary>
    /// <exception cref="InvalidOperationException">A user's request failed; the count and the first error are named.</exception>
    public static async Task<PolicyRun> RunAsync(PolicyApp app, Load load, int seed, CancellationToken cancellationToken)
    {
        var users = new List<Task<List<ReadSample>>>(load.Users);
        var random = new Random(seed);
        var start = Stopwatch.StartNew();
        for (int i = 0; i < load.Users; i++)
        {
            TimeSpan due = TimeSpan.FromSeconds(i / load.ArrivalsPerSecond) - start.Elapsed;
            if (due > TimeSpan.Zero)
            {
                await Task.Delay(due, cancellationToken).ConfigureAwait(false);
            }

            // The later reads: one at a random moment in each equal slice of the spread.
            TimeSpan[] later = [.. Enumerable.Range(0, load.LaterReads).Select(k => load.Spread * ((k + random.NextDouble()) / load.LaterReads))];
            users.Add(Task.Run(() => VirtualUser.RunAsync(app.Address, later, cancellationToken), cancellationToken));
        }

        try
        {
            await Task.WhenAll(users).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            Exception[] failed = [.. users.Where(u => u.IsFaulted).Select(u => u.Exception!.InnerException!)];
            throw new InvalidOperationException(
                $"{app.Policy}: {failed.Length} of {load.Users} users failed; the first: {failed[0].GetType().Name}: {failed[0].Message}", failed[0]);
        }

        TimeSpan wall = start.Elapsed;
        return new PolicyRun(app.Policy, [.. users.SelectMany(u => u.Result)], wall);
    }

    /// <summary><c>results[lag][policy]</c>: the five metrics first, then the details.</summary>
    public JsonObject ToJson()
    {
        var outcomes = new JsonObject();
        foreach (IGrouping<string, ReadSample> g in Reads.GroupBy(r => r.Outcome).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            outcomes[g.Key] = g.Count();
        }

        return new JsonObject
        {
            ["stale_reads"] = Stale,
            ["replica_share"] = Math.Round(ReplicaShare, 4),
            ["read_p50_ms"] = Math.Round(Latency.P50, 3),
            ["read_p99_ms"] = Math.Round(Latency.P99, 3),
            ["primary_reads_per_sec"] = Math.Round(PrimaryReadsPerSecond, 2),
            ["reads"] = Reads.Count,
            ["primary_reads"] = PrimaryReads,
            ["replica_reads"] = Replica,
            ["stale_reads_at_once"] = Reads.Count(r => r.AtOnce && !r.Found),
            ["stale_reads_later"] = Reads.Count(r => !r.AtOnce && !r.Found),
            ["stale_since_write_ms_max"] = Stale == 0 ? null : Math.Round(Reads.Where(r => !r.Found).Max(r => r.SinceWriteMs), 1),
            ["at_once_read_p50_ms"] = Math.Round(AtOnce.P50, 3),
            ["at_once_read_p99_ms"] = Math.Round(AtOnce.P99, 3),
            ["read_max_ms"] = Math.Round(Latency.Max, 3),
            ["outcomes"] = outcomes,
            ["wall_s"] = Math.Round(Wall.TotalSeconds, 2),
        };
    }

    /// <summary>The load of one run.</summary>
    /// <param name="Users">Virtual users, each writing once.</param>
    /// <param name="ArrivalsPerSecond">How many users start per second.</param>
    /// <param name="LaterReads">Reads after the one at once, one in each slice of <paramref name="Spread"/>.</param>
    /// <param name="Spread">The think times' span after the write.</param>
    internal sealed record Load(int Users, double ArrivalsPerSecond, int LaterReads, TimeSpan Spread);
}
