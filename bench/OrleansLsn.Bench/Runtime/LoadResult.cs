namespace OrleansLsn.Bench.Runtime;

/// <summary>What one closed-loop run (or several, combined) measured.</summary>
/// <param name="Concurrency">Workers.</param>
/// <param name="Calls">Calls completed in the window.</param>
/// <param name="Seconds">The window's length.</param>
/// <param name="LatenciesUs">Latencies of those calls, in microseconds, unsorted.</param>
/// <param name="ProbedInWindow">How much the run's probe counter advanced during the window, if it had one.</param>
internal sealed record LoadResult(int Concurrency, long Calls, double Seconds, double[] LatenciesUs, long? ProbedInWindow)
{
    public double CallsPerSecond => Calls / Seconds;

    /// <summary>Runs of the same load as one: calls and window lengths added, latencies pooled.</summary>
    public static LoadResult Combine(IReadOnlyList<LoadResult> runs)
    {
        ArgumentOutOfRangeException.ThrowIfZero(runs.Count);
        return new LoadResult(
            runs[0].Concurrency,
            runs.Sum(r => r.Calls),
            runs.Sum(r => r.Seconds),
            [.. runs.SelectMany(r => r.LatenciesUs)],
            runs.Any(r => r.ProbedInWindow is null) ? null : runs.Sum(r => r.ProbedInWindow!.Value));
    }
}
