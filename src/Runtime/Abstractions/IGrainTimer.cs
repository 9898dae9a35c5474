namespace OrleansLsn.Runtime;

/// <summary>A timer registered by a grain; disposing it stops it (Orleans: <c>IGrainTimer</c>).</summary>
public interface IGrainTimer : IDisposable
{
    /// <summary>Changes the due time and the period.</summary>
    void Change(TimeSpan dueTime, TimeSpan period);
}
