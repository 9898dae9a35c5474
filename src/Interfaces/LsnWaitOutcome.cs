namespace OrleansLsn;

/// <summary>How a wait for an LSN ended.</summary>
[GenerateSerializer]
[Alias("OrleansLsn.LsnWaitOutcome")]
public enum LsnWaitOutcome
{
    /// <summary>The replica's replay LSN reached the requested LSN (or the "replica" is a primary).</summary>
    Ready,

    /// <summary>The timeout elapsed first.</summary>
    TimedOut,
}
