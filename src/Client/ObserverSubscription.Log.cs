using Microsoft.Extensions.Logging;

namespace OrleansLsn.Client;

public abstract partial class ObserverSubscription
{
    private protected static partial class Log
    {
        [LoggerMessage(ClientEventIds.Subscribed, LogLevel.Information, "{Kind} {Target}: subscribed; renewing every {PeriodMs} ms")]
        internal static partial void Subscribed(ILogger logger, string kind, string target, double periodMs);

        [LoggerMessage(ClientEventIds.RenewalFailed, LogLevel.Warning, "{Kind} {Target}: renewal failed ({Failures} in a row, next try in {RetryMs} ms): {ErrorType}: {Error}")]
        internal static partial void RenewalFailed(ILogger logger, string kind, string target, int failures, double retryMs, string errorType, string error);

        [LoggerMessage(ClientEventIds.Renewed, LogLevel.Trace, "{Kind} {Target}: renewed")]
        internal static partial void Renewed(ILogger logger, string kind, string target);

        [LoggerMessage(ClientEventIds.RenewedAfterFailures, LogLevel.Information, "{Kind} {Target}: subscribed again after {Failures} failed renewals")]
        internal static partial void RenewedAfterFailures(ILogger logger, string kind, string target, int failures);

        [LoggerMessage(ClientEventIds.Unsubscribed, LogLevel.Information, "{Kind} {Target}: unsubscribed")]
        internal static partial void Unsubscribed(ILogger logger, string kind, string target);

        [LoggerMessage(ClientEventIds.UnsubscribeFailed, LogLevel.Information, "{Kind} {Target}: unsubscribing failed ({ErrorType}: {Error}); the grain drops the observer once it cannot reach it")]
        internal static partial void UnsubscribeFailed(ILogger logger, string kind, string target, string errorType, string error);

        [LoggerMessage(ClientEventIds.ObserverThrew, LogLevel.Warning, "{Kind} {Target}: the observer threw on a push (the subscription is kept): {ErrorType}: {Error}")]
        internal static partial void ObserverThrew(ILogger logger, string kind, string target, string errorType, string error);
    }
}
