using System.Globalization;
using Npgsql;

namespace OrleansLsn.Client;

/// <summary>Where a read goes when the region's replica has not replayed the token's write within the wait.</summary>
public enum ReadTimeoutAction
{
    /// <summary>Read the primary: slower and loads the primary, never stale.</summary>
    Primary,

    /// <summary>Read the replica anyway and say so (a web response carries a header): fast, may miss the user's own write.</summary>
    Stale,

    /// <summary>Read nothing: a web request is answered 503 with <c>Retry-After</c>.</summary>
    Unavailable,
}

/// <summary>How long a read may wait for the replica, and where it goes when that is not enough.</summary>
/// <param name="MaxWait">0 (never wait) to 60 s.</param>
/// <param name="OnTimeout">Where the read goes when the wait ends without the write.</param>
public readonly record struct ReadBound(TimeSpan MaxWait, ReadTimeoutAction OnTimeout)
{
    /// <summary>The bound as text for headers and logs, for example <c>500 ms, then Primary</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{MaxWait.TotalMilliseconds:0.#} ms, then {OnTimeout}");
}

/// <summary>What <see cref="ReadRouter.DecideAsync"/> decided for a read.</summary>
public enum ReadOutcome
{
    /// <summary>No token (the user has written nothing we know of, or the token was not ours): the replica at once.</summary>
    NoToken,

    /// <summary>The replica had already replayed the token's write: the replica at once.</summary>
    Replayed,

    /// <summary>The replica replayed the token's write while the read waited: the replica.</summary>
    ReplayedAfterWait,

    /// <summary>The primary: the wait ended without the write (<see cref="ReadTimeoutAction.Primary"/>), or only the primary can be trusted with the token (see <see cref="ReadDecision.Token"/>).</summary>
    Primary,

    /// <summary>The replica without the write (<see cref="ReadTimeoutAction.Stale"/>): may miss the user's own write.</summary>
    Stale,

    /// <summary>No read (<see cref="ReadTimeoutAction.Unavailable"/>): answer 503 with <c>Retry-After</c>.</summary>
    Unavailable,
}

/// <summary>What the token of a read was taken for, checked against the primary the process knows.</summary>
public enum TokenVerdict
{
    /// <summary>The read carried no token.</summary>
    None,

    /// <summary>A token of this primary, at or before its position: the read waits for it.</summary>
    Accepted,

    /// <summary>A token of another database cluster (another system identifier): ignored, the read treated as carrying none.</summary>
    Foreign,

    /// <summary>A token of an earlier timeline (written before a failover): only the primary surely has what survived, so the read goes there.</summary>
    EarlierTimeline,

    /// <summary>A token of a timeline the primary is not on (later than its own): refused, the read goes to the primary.</summary>
    UnknownTimeline,

    /// <summary>A token past the primary's current position (the database was restored or rewound): refused, the read goes to the primary.</summary>
    BeyondPrimary,
}

/// <summary>
/// Where one unit of work's reads go (a web request's, a job's), decided by <see cref="ReadRouter.DecideAsync"/>, and
/// why. Injected per scope (see <see cref="ReadScope"/>): application code opens its read connections from
/// <see cref="DataSource"/> (or injects its read <c>DbContext</c>, OrleansLsn.EntityFrameworkCore's
/// <c>AddReadDbContext</c>) and gets what was decided.
/// </summary>
public sealed class ReadDecision
{
    private readonly NpgsqlDataSource? _source;

    internal ReadDecision(ReadOutcome outcome, TokenVerdict verdict, string region, NpgsqlDataSource? source, CausalToken? token, ReadBound bound, Lsn? replay, TimeSpan waited, string why)
    {
        Outcome = outcome;
        Verdict = verdict;
        Region = region;
        _source = source;
        Token = token;
        Bound = bound;
        Replay = replay;
        Waited = waited;
        Why = why;
    }

    /// <summary>What was decided.</summary>
    public ReadOutcome Outcome { get; }

    /// <summary>What the token was taken for.</summary>
    public TokenVerdict Verdict { get; }

    /// <summary>The region the read was decided for.</summary>
    public string Region { get; }

    /// <summary>The token the read was decided for, when it was accepted (<see cref="TokenVerdict.Accepted"/>, or kept for the primary); else <c>null</c>.</summary>
    public CausalToken? Token { get; }

    /// <summary>The bound the read was decided under.</summary>
    public ReadBound Bound { get; }

    /// <summary>The replica's replay position when decided, if known.</summary>
    public Lsn? Replay { get; }

    /// <summary>How long the decision waited for the replica.</summary>
    public TimeSpan Waited { get; }

    /// <summary>Why, in a sentence (for logs, the debug header and error pages; never holds a secret).</summary>
    public string Why { get; }

    /// <summary>
    /// For a refused token (<see cref="TokenVerdict.EarlierTimeline"/>, <see cref="TokenVerdict.UnknownTimeline"/>,
    /// <see cref="TokenVerdict.BeyondPrimary"/>): the primary's position when decided, a token that covers everything it
    /// has, to carry instead; else <c>null</c>.
    /// </summary>
    public CausalToken? Replacement { get; init; }

    internal ReadDecision WithReplacement(CausalToken replacement) =>
        new(Outcome, Verdict, Region, _source, Token, Bound, Replay, Waited, Why) { Replacement = replacement };

    /// <summary>Whether the reads go to the region's replica (<see cref="ReadOutcome.Stale"/> included).</summary>
    public bool ReadsReplica => Outcome is ReadOutcome.NoToken or ReadOutcome.Replayed or ReadOutcome.ReplayedAfterWait or ReadOutcome.Stale;

    /// <summary>Whether the decision answers the read with nothing (<see cref="ReadOutcome.Unavailable"/>).</summary>
    public bool IsUnavailable => Outcome == ReadOutcome.Unavailable;

    /// <summary>The data source the reads use: the region's replica or the primary.</summary>
    /// <exception cref="ReadUnavailableException">The decision is <see cref="ReadOutcome.Unavailable"/>.</exception>
    public NpgsqlDataSource DataSource => _source ?? throw new ReadUnavailableException(this);

    /// <summary>Opens a connection of <see cref="DataSource"/>.</summary>
    /// <exception cref="ReadUnavailableException">The decision is <see cref="ReadOutcome.Unavailable"/>.</exception>
    public ValueTask<NpgsqlConnection> OpenConnectionAsync(CancellationToken cancellationToken = default) => DataSource.OpenConnectionAsync(cancellationToken);

    /// <summary>The outcome in snake case, as metrics and headers name it (for example <c>replica_after_wait</c>).</summary>
    public string OutcomeName => OutcomeNames[(int)Outcome];

    internal static readonly string[] OutcomeNames = ["no_token", "replayed", "replayed_after_wait", "primary", "stale", "unavailable"];

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{OutcomeName} in {Region}: {Why} (token {Token?.Lsn.ToString() ?? "none"}, replay {Replay?.ToString() ?? "unknown"}, waited {Waited.TotalMilliseconds:0.#} ms)");
}

/// <summary>A read was decided <see cref="ReadOutcome.Unavailable"/>: the replica did not replay the user's write within the bound.</summary>
public sealed class ReadUnavailableException : Exception
{
    /// <summary>Creates the exception for <paramref name="decision"/>.</summary>
    public ReadUnavailableException(ReadDecision decision)
        : base($"No read: {decision?.Why}")
    {
        Decision = decision ?? throw new ArgumentNullException(nameof(decision));
    }

    /// <summary>The decision.</summary>
    public ReadDecision Decision { get; }
}
