using System.Globalization;

namespace OrleansLsn.Client;

/// <summary>
/// A region's replica had not replayed a session's last write within the session's wait timeout (policy
/// <see cref="ReadYourWritesTimeoutPolicy.Throw"/>). Nothing was read; reading the replica now could miss the write.
/// </summary>
public sealed class ReadYourWritesTimeoutException : TimeoutException
{
    /// <summary>Creates the exception for <paramref name="region"/> and <paramref name="lsn"/>.</summary>
    /// <param name="region">The region whose replica was asked for.</param>
    /// <param name="lsn">The session's last write, which the replica had not replayed.</param>
    /// <param name="replayLsn">The replica's replay position when the wait ended, if the tracker reported one.</param>
    /// <param name="timeout">The wait timeout that passed.</param>
    /// <param name="innerException">The last failure to reach the tracker, when failures used up the time.</param>
    public ReadYourWritesTimeoutException(string region, Lsn lsn, Lsn? replayLsn, TimeSpan timeout, Exception? innerException = null)
        : base(Describe(region, lsn, replayLsn, timeout, innerException), innerException)
    {
        Region = region;
        Lsn = lsn;
        ReplayLsn = replayLsn;
        Timeout = timeout;
    }

    /// <summary>Creates an exception with only a message.</summary>
    public ReadYourWritesTimeoutException(string message)
        : this(message, null)
    {
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public ReadYourWritesTimeoutException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Region = "";
    }

    /// <summary>Creates an empty exception.</summary>
    public ReadYourWritesTimeoutException()
    {
        Region = "";
    }

    /// <summary>The region whose replica was asked for.</summary>
    public string Region { get; }

    /// <summary>The session's last write: the LSN the replica had to replay.</summary>
    public Lsn Lsn { get; }

    /// <summary>The replica's replay position when the wait ended; <see langword="null"/> when unknown (the tracker was not reached, or has not polled yet).</summary>
    public Lsn? ReplayLsn { get; }

    /// <summary>The wait timeout that passed.</summary>
    public TimeSpan Timeout { get; }

    private static string Describe(string region, Lsn lsn, Lsn? replayLsn, TimeSpan timeout, Exception? innerException)
    {
        string replay = replayLsn is { } r ? string.Create(CultureInfo.InvariantCulture, $"its replay was at {r}, {lsn - r} bytes behind") : "its replay position is unknown";
        string reason = innerException is null ? "" : $" The tracker could not be reached: {innerException.GetType().Name}: {innerException.Message}";
        return string.Create(
            CultureInfo.InvariantCulture,
            $"The replica of region '{region}' had not replayed LSN {lsn} (this session's last write) within {timeout.TotalSeconds:0.###} s; {replay}.{reason}");
    }
}
