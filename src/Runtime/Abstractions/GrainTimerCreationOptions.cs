namespace OrleansLsn.Runtime;

/// <summary>Options for <c>Grain.RegisterGrainTimer</c> (Orleans: <c>GrainTimerCreationOptions</c>).</summary>
public readonly record struct GrainTimerCreationOptions
{
    /// <summary>Creates options with a due time and a period.</summary>
    public GrainTimerCreationOptions(TimeSpan dueTime, TimeSpan period)
    {
        DueTime = dueTime;
        Period = period;
    }

    /// <summary>Time before the first tick. <see cref="Timeout.InfiniteTimeSpan"/> means never.</summary>
    public TimeSpan DueTime { get; init; }

    /// <summary>
    /// Time between the end of one tick's callback and the next tick. <see cref="Timeout.InfiniteTimeSpan"/> means one
    /// tick only.
    /// </summary>
    public TimeSpan Period { get; init; }

    /// <summary>Whether ticks may interleave with requests. Default: no, a tick is a turn like any request.</summary>
    public bool Interleave { get; init; }

    /// <summary>Whether ticks count as activity, so the grain is not deactivated for being idle. Default: no.</summary>
    public bool KeepAlive { get; init; }
}
