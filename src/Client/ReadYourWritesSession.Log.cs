using Microsoft.Extensions.Logging;

namespace OrleansLsn.Client;

public sealed partial class ReadYourWritesSession
{
    private static partial class Log
    {
        [LoggerMessage(ClientEventIds.WaitFailed, LogLevel.Information, "Read-your-writes in region {Region}: waiting for {Lsn} failed (attempt {Attempt}, {ErrorType}: {Error}); asking again within the deadline")]
        internal static partial void WaitFailed(ILogger logger, string region, Lsn lsn, int attempt, string errorType, string error);

        [LoggerMessage(ClientEventIds.WaitEndedEarly, LogLevel.Information, "Read-your-writes in region {Region}: the tracker ended the wait for {Lsn} before its timeout (attempt {Attempt}; its activation stopped); asking again")]
        internal static partial void WaitEndedEarly(ILogger logger, string region, Lsn lsn, int attempt);

        [LoggerMessage(ClientEventIds.ReadyAfterRetries, LogLevel.Information, "Read-your-writes in region {Region}: {Lsn} replayed after {Attempts} attempts, {ElapsedMs:0.#} ms")]
        internal static partial void ReadyAfterRetries(ILogger logger, string region, Lsn lsn, int attempts, double elapsedMs);

        [LoggerMessage(ClientEventIds.ReadingFromPrimary, LogLevel.Warning, "Read-your-writes in region {Region}: {Lsn} not replayed within {TimeoutMs} ms (replay at {Replay}); reading from the primary")]
        internal static partial void ReadingFromPrimary(ILogger logger, string region, Lsn lsn, double timeoutMs, string replay);

        [LoggerMessage(ClientEventIds.TimedOut, LogLevel.Information, "Read-your-writes in region {Region}: {Lsn} not replayed within {TimeoutMs} ms (replay at {Replay})")]
        internal static partial void TimedOut(ILogger logger, string region, Lsn lsn, double timeoutMs, string replay);

        [LoggerMessage(ClientEventIds.RecordAfterFailureFailed, LogLevel.Warning, "Read-your-writes: the write failed ({WriteError}) and the primary's position could not be recorded afterwards ({ErrorType}: {Error}); later reads may not see what it committed")]
        internal static partial void RecordAfterFailureFailed(ILogger logger, string writeError, string errorType, string error);

        [LoggerMessage(ClientEventIds.ReadRouted, LogLevel.Debug, "Read-your-writes: {Read}")]
        internal static partial void ReadRouted(ILogger logger, ReadYourWritesRead read);
    }
}
