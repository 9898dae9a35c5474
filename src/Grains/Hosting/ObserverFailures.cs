namespace OrleansLsn.Hosting;

/// <summary>Tells an observer that cannot be reached apart from one whose own code threw.</summary>
internal static class ObserverFailures
{
    /// <summary>
    /// Whether <paramref name="exception"/> means the observer could not be reached (its client is gone, the call timed
    /// out or was rejected), rather than that the observer ran and threw.
    /// </summary>
    internal static bool IsUnreachable(Exception exception) => exception is TimeoutException
        or ClientNotAvailableException
        or SiloUnavailableException
        or OrleansMessageRejectionException
        or GatewayTooBusyException;

    /// <summary>Type and message, for logs and status (observer exceptions carry no secrets of ours).</summary>
    internal static string Describe(Exception exception) => exception.GetType().Name + ": " + exception.Message;
}
