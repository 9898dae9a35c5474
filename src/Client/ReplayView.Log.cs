using Microsoft.Extensions.Logging;

namespace OrleansLsn.Client;

public sealed partial class ReplayView
{
    private static partial class Log
    {
        [LoggerMessage(ClientEventIds.ViewCallFailed, LogLevel.Information, "Replay view of region {Region}: a call to the tracker failed ({Failures} in a row, next try in {DelayMs} ms; {ErrorType}: {Error})")]
        internal static partial void CallFailed(ILogger logger, string region, int failures, double delayMs, string errorType, string error);

        [LoggerMessage(ClientEventIds.ViewRecovered, LogLevel.Information, "Replay view of region {Region}: the tracker answers again after {Failures} failed calls")]
        internal static partial void Recovered(ILogger logger, string region, int failures);

        [LoggerMessage(ClientEventIds.ViewPulling, LogLevel.Information, "Replay view of region {Region}: no push within the staleness bound while waits are pending; answering them through RequestAndAwait until pushes resume")]
        internal static partial void Pulling(ILogger logger, string region);

        [LoggerMessage(ClientEventIds.ViewPullFailed, LogLevel.Debug, "Replay view of region {Region}: RequestAndAwait failed ({ErrorType}: {Error}); trying again")]
        internal static partial void PullFailed(ILogger logger, string region, string errorType, string error);

        [LoggerMessage(ClientEventIds.ViewWentBack, LogLevel.Warning, "Replay view of region {Region}: the tracker's position went back to {Replay} from {Previous} (the replica was replaced or restarted behind); waits follow it")]
        internal static partial void WentBack(ILogger logger, string region, string replay, Lsn previous);

        [LoggerMessage(ClientEventIds.ViewRetired, LogLevel.Debug, "Replay view of region {Region}: unused for {IdleSeconds} s; registration withdrawn")]
        internal static partial void Retired(ILogger logger, string region, double idleSeconds);

        [LoggerMessage(ClientEventIds.ViewUnwatchFailed, LogLevel.Debug, "Replay view of region {Region}: withdrawing the registration failed ({ErrorType}: {Error}); the tracker forgets it when it is not renewed")]
        internal static partial void UnwatchFailed(ILogger logger, string region, string errorType, string error);

        [LoggerMessage(ClientEventIds.ViewStopped, LogLevel.Debug, "Replay view of region {Region} stopped")]
        internal static partial void Stopped(ILogger logger, string region);
    }
}
