namespace OrleansLsn;

/// <summary>
/// A client's replay view of one region (OrleansLsn.Client keeps one per region per process), registered with
/// <see cref="ILsnTrackerGrain.WatchReplay"/>. Pushes are coalesced, one in flight per view: the newest state wins.
/// </summary>
public interface IReplayViewObserver : IGrainObserver
{
    /// <summary>The tracker's state changed: every advance while the view has demand, at a low rate otherwise.</summary>
    Task OnReplayView(ReplayViewState state);
}
