using OrleansLsn.Client;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// Retires a replay view that a test left on a client's shared views (<see cref="ReplayViews.For"/>): a view keeps
/// its region's tracker active for <see cref="ReplayViewOptions.IdleLifetime"/> (2 min) after its last use, which a
/// later test in the same collection, on the same client, may not expect.
/// </summary>
internal static class SharedReplayViews
{
    /// <summary>Stops the shared view of <paramref name="region"/> on <paramref name="grains"/>, if there is one; its registration is withdrawn.</summary>
    public static async Task RetireAsync(IGrainFactory grains, string region)
    {
        ReplayViews views = ReplayViews.For(grains);
        if (!views.Regions.Contains(region))
        {
            return;
        }

        ReplayView view = views.Get(region);
        views.Remove(view);
        await view.StopAsync();
    }
}
