namespace OrleansLsn.Bench.Common;

/// <summary>Percentiles of a sample by the nearest-rank method: p of n sorted values is the ceil(p·n)-th one.</summary>
internal sealed class Percentiles
{
    private readonly double[] _sorted;

    public Percentiles(IEnumerable<double> samples)
    {
        _sorted = [.. samples];
        if (_sorted.Length == 0)
        {
            throw new InvalidOperationException("No samples were collected, so there is no percentile to report.");
        }

        Array.Sort(_sorted);
    }

    public int Count => _sorted.Length;

    public double Min => _sorted[0];

    public double Max => _sorted[^1];

    public double Mean => _sorted.Average();

    public double P50 => At(0.50);

    public double P90 => At(0.90);

    public double P99 => At(0.99);

    /// <summary>The nearest-rank percentile for <paramref name="fraction"/> in (0, 1].</summary>
    public double At(double fraction)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fraction);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(fraction, 1.0);
        int rank = (int)Math.Ceiling(fraction * _sorted.Length);
        return _sorted[Math.Clamp(rank, 1, _sorted.Length) - 1];
    }
}
