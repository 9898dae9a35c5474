using OrleansLsn.Tracking;

namespace OrleansLsn.Hosting;

/// <summary>
/// The grains' part of the <c>OrleansLsn</c> configuration section of a silo (see the configuration contract in the
/// README). Bound from appsettings.json, <c>OrleansLsn__*</c> environment variables or the command line, and validated
/// at start by <see cref="OrleansLsnOptionsValidator"/>: a silo with a wrong configuration does not start.
/// </summary>
public sealed class OrleansLsnOptions
{
    /// <summary>The configuration section this binds to.</summary>
    public const string SectionName = "OrleansLsn";

    /// <summary>
    /// This silo's region, published as silo metadata; the tracker of region R runs only on silos whose region is R.
    /// 1 to 63 characters: letters, digits, <c>-</c>, <c>_</c> and <c>.</c>, starting with a letter or digit. Required.
    /// </summary>
    public string Region { get; set; } = "";

    /// <summary>
    /// The primary: replication slots are streamed from it. Never logged. Required (or
    /// <see cref="PrimaryConnectionStringFile"/>).
    /// </summary>
    public string PrimaryConnectionString { get; set; } = "";

    /// <summary>
    /// A file whose content (without its trailing newline) is <see cref="PrimaryConnectionString"/>, as container secrets
    /// provide it (<c>/run/secrets/...</c>). Read once when the options are built; not together with
    /// <see cref="PrimaryConnectionString"/>. A missing, unreadable or empty file stops the silo, named by this key.
    /// </summary>
    public string? PrimaryConnectionStringFile { get; set; }

    /// <summary>
    /// This region's replica, watched by this region's tracker when it runs on this silo. The primary itself is allowed
    /// (every LSN then counts as replicated). Never logged. Required (or <see cref="ReplicaConnectionStringFile"/>).
    /// </summary>
    public string ReplicaConnectionString { get; set; } = "";

    /// <summary>
    /// A file whose content is <see cref="ReplicaConnectionString"/>; the same rules as
    /// <see cref="PrimaryConnectionStringFile"/>.
    /// </summary>
    public string? ReplicaConnectionStringFile { get; set; }

    /// <summary>
    /// Tuning of the tracker engine (poll intervals, timeouts, backoff); see <see cref="LsnTrackerOptions"/>. Its
    /// <see cref="LsnTrackerOptions.ReplicaConnectionString"/> is ignored here: <see cref="ReplicaConnectionString"/>
    /// is used.
    /// </summary>
    public LsnTrackerOptions Tracker { get; set; } = new() { MaxWaitTimeout = MaxGrainWaitTimeout };

    /// <summary>
    /// The longest wait a tracker grain accepts (and the default of <c>Tracker:MaxWaitTimeout</c> here): it stays below
    /// the 65 s response timeout of <see cref="ILsnTrackerGrain.RequestAndAwait"/>, so that a wait always ends before its
    /// call would be timed out.
    /// </summary>
    public static readonly TimeSpan MaxGrainWaitTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How the tracker grain treats its observers.</summary>
    public TrackerObserverOptions Observers { get; set; } = new();

    /// <summary>The slots this cluster may stream, and how.</summary>
    public ReplicationOptions Replication { get; set; } = new();

    /// <summary>
    /// How long placement waits for the region of a silo that joined a moment ago (its metadata not fetched yet) before
    /// deciding that a region has no silo. Default 5 s.
    /// </summary>
    public TimeSpan PlacementMetadataWait { get; set; } = TimeSpan.FromSeconds(5);
}
