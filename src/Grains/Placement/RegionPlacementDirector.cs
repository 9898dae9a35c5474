using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;
using OrleansLsn.Hosting;

namespace OrleansLsn.Placement;

/// <summary>
/// Chooses a silo of the grain key's region: the local silo when it is one (clients usually call gateways of their own
/// region, so the tracker lands next to them), otherwise a random one. A silo whose metadata has not been fetched yet
/// (it joined a moment ago) is never chosen; if such silos exist and no silo of the region is known, placement waits up
/// to <see cref="OrleansLsnOptions.PlacementMetadataWait"/> for their metadata before it fails.
/// </summary>
internal sealed partial class RegionPlacementDirector(
    ISiloMetadataCache metadata,
    IOptions<OrleansLsnOptions> options,
    TimeProvider time,
    ILogger<RegionPlacementDirector> logger) : IPlacementDirector
{
    private static readonly TimeSpan MetadataPollInterval = TimeSpan.FromMilliseconds(50);

    public async Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string region = target.GrainIdentity.Key.ToString()!;
        RegionNames.ThrowIfInvalid(region, "region");
        long started = time.GetTimestamp();
        while (true)
        {
            SiloAddress[] compatible = context.GetCompatibleSilos(target);
            var inRegion = new List<SiloAddress>();
            var known = new HashSet<string>(StringComparer.Ordinal);
            int unknown = 0;
            foreach (SiloAddress silo in compatible)
            {
                string? siloRegion = RegionOf(silo, context.LocalSilo);
                if (siloRegion is null)
                {
                    unknown++;
                    continue;
                }

                known.Add(siloRegion);
                if (string.Equals(siloRegion, region, StringComparison.Ordinal))
                {
                    inRegion.Add(silo);
                }
            }

            if (inRegion.Count > 0)
            {
                if (IPlacementDirector.GetPlacementHint(target.RequestContextData, [.. inRegion]) is { } hint)
                {
                    return hint;
                }

                return inRegion.Contains(context.LocalSilo) ? context.LocalSilo : inRegion[Random.Shared.Next(inRegion.Count)];
            }

            if (unknown == 0 || time.GetElapsedTime(started) >= options.Value.PlacementMetadataWait)
            {
                Log.NoSiloInRegion(logger, region, unknown, string.Join(", ", known.Order(StringComparer.Ordinal)));
                throw new RegionUnavailableException(region, known);
            }

            // Some silos' regions are not known yet: wait for their metadata rather than guess.
            await Task.Delay(MetadataPollInterval, time).ConfigureAwait(false);
        }
    }

    private string? RegionOf(SiloAddress silo, SiloAddress local)
    {
        if (silo.Equals(local))
        {
            // Our own region is known from our configuration, even before the metadata cache has caught up.
            return options.Value.Region;
        }

        return metadata.GetSiloMetadata(silo).Metadata.TryGetValue(RegionMetadata.Key, out string? region) ? region : null;
    }

    private static partial class Log
    {
        [LoggerMessage(4000, LogLevel.Warning, "No active silo of region {Region} to place its tracker on ({Unknown} silo(s) of unknown region); regions with silos: {Regions}")]
        internal static partial void NoSiloInRegion(ILogger logger, string region, int unknown, string regions);
    }
}
