namespace OrleansLsn.Bench.Common;

/// <summary>Settings every benchmark command shares.</summary>
/// <param name="Quick">Shorter run for smoke testing; figures are noisier.</param>
/// <param name="OutputDirectory">Where <c>&lt;area&gt;.json</c> is written.</param>
/// <param name="Primary">Connection string of an existing primary, or <see langword="null"/> for a local throw-away cluster.</param>
/// <param name="Standby">Connection string of an existing hot standby of <paramref name="Primary"/>.</param>
internal sealed record BenchSettings(bool Quick, string OutputDirectory, string? Primary, string? Standby);
