namespace OrleansLsn.Client;

/// <summary>How a <see cref="ReadYourWritesSession"/> waits for a region's replica; checked by <see cref="ReadYourWritesOptionsValidator"/>.</summary>
public sealed class ReadYourWritesOptions
{
    /// <summary>
    /// The caller's deadline for one <see cref="ReadYourWritesSession.OpenReadConnectionAsync"/>: how long it waits for
    /// the replica to replay the session's last write, retries included. Default 3 s; positive and at most 60 s (the
    /// tracker's maximum wait).
    /// </summary>
    public TimeSpan WaitTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>What happens when <see cref="WaitTimeout"/> passes first. Default <see cref="ReadYourWritesTimeoutPolicy.Throw"/>.</summary>
    public ReadYourWritesTimeoutPolicy OnTimeout { get; set; } = ReadYourWritesTimeoutPolicy.Throw;

    /// <summary>
    /// The first pause before asking the tracker again after a silo or gateway failure (the wait is idempotent); it
    /// doubles up to <see cref="RetryMaxDelay"/>, and never reaches past the deadline. Default 50 ms.
    /// </summary>
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>The longest pause between two attempts. Default 500 ms; at least <see cref="RetryInitialDelay"/>.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How much longer than the time left a tracker call may take before the session stops waiting for its answer and
    /// treats the deadline as passed (a call to a silo that died answers only when Orleans notices). Default 1 s.
    /// </summary>
    public TimeSpan CallGrace { get; set; } = TimeSpan.FromSeconds(1);
}
