namespace OrleansLsn.Placement;

/// <summary>
/// Places a grain whose key is a region name on an active silo of that region (the region a silo publishes as silo
/// metadata under <see cref="RegionMetadata.Key"/>). If no silo of the region is active, the call that would activate
/// the grain fails at once with <see cref="RegionUnavailableException"/>.
/// </summary>
[Serializable]
[GenerateSerializer]
[Immutable]
[SuppressReferenceTracking]
[Alias("OrleansLsn.RegionPlacement")]
public sealed class RegionPlacement : PlacementStrategy
{
    /// <summary>The one instance.</summary>
    public static RegionPlacement Instance { get; } = new();
}
