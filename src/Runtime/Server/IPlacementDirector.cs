using System.Net;

namespace OrleansLsn.Runtime;

/// <summary>A silo's address: its endpoint and the generation (start time) that tells restarts apart (Orleans: <c>SiloAddress</c>).</summary>
public sealed record SiloAddress(IPEndPoint EndPoint, long Generation)
{
    /// <inheritdoc />
    public override string ToString() => $"S{EndPoint}@{Generation}";
}

/// <summary>
/// Decides which silo hosts a grain's activation. This silo-only runtime places every grain locally; the cluster
/// issue adds region-pinned placement over the membership table without changing callers.
/// </summary>
public interface IPlacementDirector
{
    /// <summary>The silo that should host the grain with this type and key.</summary>
    SiloAddress Place(string grainType, string key);
}

/// <summary>Places every grain on the local silo.</summary>
internal sealed class LocalPlacementDirector(Func<SiloAddress> local) : IPlacementDirector
{
    public SiloAddress Place(string grainType, string key) => local();
}
