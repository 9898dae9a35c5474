namespace OrleansLsn;

/// <summary>
/// No silo of the requested region is active, so its tracker cannot run anywhere. Thrown at once (not after a timeout)
/// by a call to that region's <see cref="ILsnTrackerGrain"/>; the message names the region and the regions that have
/// silos.
/// </summary>
[GenerateSerializer]
[Alias("OrleansLsn.RegionUnavailableException")]
public sealed class RegionUnavailableException : OrleansException
{
    /// <summary>Creates the exception for <paramref name="region"/>, listing the regions that have active silos.</summary>
    public RegionUnavailableException(string region, IReadOnlyCollection<string> availableRegions)
        : base(Describe(region, availableRegions))
    {
        Region = region;
        AvailableRegions = [.. availableRegions];
    }

    /// <summary>Creates an exception with only a message.</summary>
    public RegionUnavailableException(string message)
        : base(message)
    {
        Region = "";
        AvailableRegions = [];
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public RegionUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
        Region = "";
        AvailableRegions = [];
    }

    /// <summary>Creates an empty exception (for serializers).</summary>
    public RegionUnavailableException()
    {
        Region = "";
        AvailableRegions = [];
    }

    /// <summary>The region that was asked for.</summary>
    [Id(0)]
    public string Region { get; private set; }

    /// <summary>The regions that had active silos when the call failed.</summary>
    [Id(1)]
    public IReadOnlyList<string> AvailableRegions { get; private set; }

    private static string Describe(string region, IReadOnlyCollection<string> availableRegions) =>
        availableRegions.Count == 0
            ? $"No silo of region '{region}' is active, and no silo publishes a region."
            : $"No silo of region '{region}' is active. Regions with active silos: {string.Join(", ", availableRegions.Order(StringComparer.Ordinal).Select(r => "'" + r + "'"))}.";
}
