namespace OrleansLsn.Bench.Web;

/// <summary>One list page read after the user's write.</summary>
/// <param name="SinceWriteMs">From the write's 303 arriving at the user to this read's start.</param>
/// <param name="LatencyMs">The read's request, connection included, to the last byte of the page.</param>
/// <param name="Outcome">The page's <c>data-outcome</c>.</param>
/// <param name="Found">Whether the user's item was in the page's list.</param>
/// <param name="AtOnce">The read right after the redirect (else one of the later reads).</param>
internal readonly record struct ReadSample(double SinceWriteMs, double LatencyMs, string Outcome, bool Found, bool AtOnce);
