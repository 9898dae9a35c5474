namespace OrleansLsn.Client;

/// <summary>Event ids of the client library's logs, in one place (range 5000–5199).</summary>
internal static class ClientEventIds
{
    internal const int WaitFailed = 5000;
    internal const int WaitEndedEarly = 5001;
    internal const int ReadyAfterRetries = 5002;
    internal const int ReadingFromPrimary = 5003;
    internal const int TimedOut = 5004;
    internal const int RecordAfterFailureFailed = 5005;

    internal const int Subscribed = 5050;
    internal const int RenewalFailed = 5051;
    internal const int Renewed = 5052;
    internal const int RenewedAfterFailures = 5053;
    internal const int Unsubscribed = 5054;
    internal const int UnsubscribeFailed = 5055;
    internal const int ObserverThrew = 5056;

    internal const int ConnectRetrying = 5080;

    internal const int ViewCallFailed = 5100;
    internal const int ViewRecovered = 5101;
    internal const int ViewPulling = 5102;
    internal const int ViewPullFailed = 5103;
    internal const int ViewWentBack = 5104;
    internal const int ViewRetired = 5105;
    internal const int ViewUnwatchFailed = 5106;
    internal const int ViewStopped = 5107;
    internal const int ReadRouted = 5110;

    internal const int ReadDecided = 5120;
    internal const int PrimaryUnreachable = 5121;
    internal const int ReadWaitFailed = 5122;
}
