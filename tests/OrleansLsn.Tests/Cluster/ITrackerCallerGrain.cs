namespace OrleansLsn.Tests.Cluster;

/// <summary>A grain that waits on a tracker: a caller other than the test's client, for the per-caller cap.</summary>
[Alias("OrleansLsn.Tests.Cluster.ITrackerCallerGrain")]
public interface ITrackerCallerGrain : IGrainWithStringKey
{
    [Alias("Wait")]
    Task<LsnWaitResult> Wait(string region, Lsn lsn, TimeSpan timeout);
}

/// <summary>Serves <see cref="ITrackerCallerGrain"/>.</summary>
public sealed class TrackerCallerGrain : Grain, ITrackerCallerGrain
{
    public Task<LsnWaitResult> Wait(string region, Lsn lsn, TimeSpan timeout) =>
        GrainFactory.GetGrain<ILsnTrackerGrain>(region).RequestAndAwait(lsn, timeout);
}
