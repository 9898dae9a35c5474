namespace OrleansLsn.Bench.Common;

/// <summary>One line of the results table.</summary>
/// <param name="Metric">What is measured.</param>
/// <param name="Ours">Our figure, formatted with its unit.</param>
/// <param name="Anchor">What it is compared with (the limit or the naive approach), formatted; "—" if nothing.</param>
/// <param name="Ratio">Ours / anchor, formatted; "—" if not meaningful.</param>
/// <param name="Goal">The goal in words.</param>
/// <param name="Met"><see langword="true"/>/<see langword="false"/> for a goal, <see langword="null"/> for an informational line.</param>
/// <param name="GoalKey">Key of the goal in the JSON <c>goals</c> object; <see langword="null"/> for informational lines.</param>
internal sealed record ResultRow(string Metric, string Ours, string Anchor, string Ratio, string Goal, bool? Met, string? GoalKey = null);
