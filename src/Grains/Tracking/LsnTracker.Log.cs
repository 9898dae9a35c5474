using Microsoft.Extensions.Logging;

namespace OrleansLsn.Tracking;

public sealed partial class LsnTracker
{
    /// <summary>Event ids of the tracker, in one place (range 1000–1099).</summary>
    internal static class EventIds
    {
        internal const int Started = 1000;
        internal const int Healthy = 1001;
        internal const int Degraded = 1002;
        internal const int PollFailed = 1003;
        internal const int PrimaryDetected = 1004;
        internal const int ReplayWentBack = 1005;
        internal const int CallbackFailed = 1006;
        internal const int Stopped = 1007;
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.Started, LogLevel.Information, "LSN tracker for region {Region} started, watching {Endpoint}")]
        internal static partial void Started(ILogger logger, string region, string endpoint);

        [LoggerMessage(EventIds.Healthy, LogLevel.Information, "LSN tracker for region {Region} is healthy (replay {Replay}, after {Failures} failures)")]
        internal static partial void Healthy(ILogger logger, string region, string replay, int failures);

        [LoggerMessage(EventIds.Degraded, LogLevel.Warning, "LSN tracker for region {Region} is degraded, retrying in {DelayMs} ms: {Error}")]
        internal static partial void Degraded(ILogger logger, string region, long delayMs, string error);

        [LoggerMessage(EventIds.PollFailed, LogLevel.Debug, "LSN tracker for region {Region}: poll failed again ({Failures} in a row), retrying in {DelayMs} ms: {Error}")]
        internal static partial void PollFailed(ILogger logger, string region, int failures, long delayMs, string error);

        [LoggerMessage(EventIds.PrimaryDetected, LogLevel.Information, "LSN tracker for region {Region}: {Endpoint} is a primary (not in recovery); every LSN counts as replicated")]
        internal static partial void PrimaryDetected(ILogger logger, string region, string endpoint);

        [LoggerMessage(EventIds.ReplayWentBack, LogLevel.Warning, "LSN tracker for region {Region}: after reconnecting, replay is {Replay}, behind the {Previous} seen before (replica restarted or replaced); using the new value")]
        internal static partial void ReplayWentBack(ILogger logger, string region, string replay, string previous);

        [LoggerMessage(EventIds.CallbackFailed, LogLevel.Error, "LSN tracker for region {Region}: a notification callback threw")]
        internal static partial void CallbackFailed(ILogger logger, string region, Exception exception);

        [LoggerMessage(EventIds.Stopped, LogLevel.Information, "LSN tracker for region {Region} stopped")]
        internal static partial void Stopped(ILogger logger, string region);
    }
}
