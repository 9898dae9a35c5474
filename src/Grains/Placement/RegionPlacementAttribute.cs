using Orleans.Placement;

namespace OrleansLsn.Placement;

/// <summary>Marks a grain class keyed by region name for <see cref="RegionPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class RegionPlacementAttribute : PlacementAttribute
{
    /// <summary>Creates the attribute.</summary>
    public RegionPlacementAttribute()
        : base(RegionPlacement.Instance)
    {
    }
}
