namespace OrleansLsn.Placement;

/// <summary>Where a silo's region lives in Orleans' silo metadata.</summary>
public static class RegionMetadata
{
    /// <summary>The silo metadata key holding the silo's region.</summary>
    public const string Key = "orleanslsn.region";
}
