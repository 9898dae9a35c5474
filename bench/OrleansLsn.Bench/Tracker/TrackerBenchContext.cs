namespace OrleansLsn.Bench.Tracker;

/// <summary>What every tracker scenario shares: the same primary and standby, the run length and the poll counter.</summary>
/// <param name="Primary">Connection string of the primary.</param>
/// <param name="Standby">Connection string of the hot standby.</param>
/// <param name="Quick">Shorter run.</param>
/// <param name="Samples">Wake-latency samples per side.</param>
/// <param name="Polls">The tracker's own poll counter, per region.</param>
internal sealed record TrackerBenchContext(string Primary, string Standby, bool Quick, int Samples, PollCounter Polls);
