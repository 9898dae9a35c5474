namespace OrleansLsn;

/// <summary>The result of waiting for an LSN to be replayed.</summary>
/// <param name="Outcome">Whether the LSN was replayed in time.</param>
/// <param name="ReplayLsn">The latest replay LSN the tracker knew when the wait ended; <see langword="null"/> if it never
/// reached the replica.</param>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.LsnWaitResult")]
public sealed record LsnWaitResult([property: Id(0)] LsnWaitOutcome Outcome, [property: Id(1)] Lsn? ReplayLsn)
{
    /// <summary><see langword="true"/> when <see cref="Outcome"/> is <see cref="LsnWaitOutcome.Ready"/>.</summary>
    public bool IsReady => Outcome == LsnWaitOutcome.Ready;
}
