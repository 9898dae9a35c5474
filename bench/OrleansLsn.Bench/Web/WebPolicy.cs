namespace OrleansLsn.Bench.Web;

/// <summary>The read policies the <c>web</c> benchmark compares, by the name used in the table and the JSON.</summary>
internal static class WebPolicy
{
    /// <summary>OrleansLsn's read decision (the sample as written): the replica once it has the user's write, else wait up to the bound, then the primary.</summary>
    public const string Ours = "ours";

    /// <summary>Rails' <c>DatabaseSelector</c>: the primary for <see cref="RailsReads.Delay"/> after the user's last write, else the replica.</summary>
    public const string Rails = "rails";

    /// <summary>Always the primary.</summary>
    public const string Primary = "primary";

    /// <summary>Always the region's replica.</summary>
    public const string Replica = "replica";

    public static IReadOnlyList<string> All { get; } = [Ours, Rails, Primary, Replica];

    /// <summary>
    /// Whether a list page's <c>data-outcome</c> says the read went to the replica (<see langword="true"/>), the primary
    /// (<see langword="false"/>) or neither (<see langword="null"/>: no read, e.g. <c>unavailable</c>).
    /// </summary>
    public static bool? ReadReplica(string outcome) => outcome switch
    {
        "primary" => false,
        "no_token" or "replayed" or "replayed_after_wait" or "stale" or "replica" => true,
        _ => null,
    };
}
