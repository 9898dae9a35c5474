namespace OrleansLsn;

/// <summary>Receives pushes from an <see cref="ILsnTrackerGrain"/>.</summary>
public interface ILsnObserver : IGrainObserver
{
    /// <summary>The replica of <paramref name="region"/> has replayed <paramref name="requested"/>; it is at <paramref name="replay"/>.</summary>
    Task OnLsnReplicated(string region, Lsn requested, Lsn replay);

    /// <summary>The replica of <paramref name="region"/> advanced to <paramref name="replay"/>. Pushes are coalesced: the newest wins.</summary>
    Task OnReplayAdvanced(string region, Lsn replay);
}
