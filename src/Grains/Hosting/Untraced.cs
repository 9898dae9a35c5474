using System.Diagnostics;

namespace OrleansLsn.Hosting;

/// <summary>
/// Starts long-lived work outside the caller's trace. A loop started while a call is traced would otherwise carry that
/// call's <see cref="Activity.Current"/> for its whole life, and every query and push it makes would join that trace.
/// </summary>
internal static class Untraced
{
    /// <summary>Runs <paramref name="start"/> (which starts the work) with no current activity, then restores the caller's.</summary>
    internal static T Start<T>(Func<T> start)
    {
        Activity? caller = Activity.Current;
        if (caller is null)
        {
            return start();
        }

        Activity.Current = null;
        try
        {
            return start();
        }
        finally
        {
            Activity.Current = caller;
        }
    }
}
