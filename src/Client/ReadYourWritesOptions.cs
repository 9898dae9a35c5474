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

    /// <summary>
    /// Where a read goes when the preferred replica lacks the session's last write: wait and throw, wait and use the
    /// primary, or use another replica that has it, else the primary. Default <see cref="ReadYourWritesTimeoutPolicy.Throw"/>.
    /// </summary>
    public ReadYourWritesTimeoutPolicy OnTimeout { get; set; } = ReadYourWritesTimeoutPolicy.Throw;

    /// <summary>
    /// Decide waits in the client's replay views (<see cref="ReplayViews"/>: no grain call for a write already replayed,
    /// local waiters otherwise). Default <see langword="true"/>. <see langword="false"/> asks the tracker grain for every
    /// read (<see cref="ILsnTrackerGrain.RequestAndAwait"/>, retried after silo failures), as a plain Orleans client would.
    /// </summary>
    public bool UseReplayView { get; set; } = true;

    /// <summary>
    /// The order in which <see cref="ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary"/> tries the other regions'
    /// replicas, nearest first. Every name must be one of the session's regions; regions not listed are tried after
    /// them, by name. Default empty (all by name).
    /// </summary>
    public IList<string> ReplicaOrder { get; init; } = new List<string>();

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
