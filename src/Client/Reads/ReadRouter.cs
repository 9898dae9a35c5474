using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace OrleansLsn.Client;

/// <summary>
/// Decides where a unit of work reads, from the user's <see cref="CausalToken"/>: the region's replica at once when its
/// replay already has the token's write (known in the process, from the client's <see cref="ReplayView"/>; a grain call
/// when replay views are off), else after waiting for it up to the bound, else what the bound says (the primary, the
/// replica marked stale, or nothing). A token is first checked against the primary: one of another database is
/// ignored, one of an earlier timeline or past the primary's position goes to the primary. The primary is asked for its
/// position only for a token ahead of every position this process has seen (its own writes, <see cref="Observe"/>, and
/// earlier answers), so a request costs no round trip of its own to the primary. Owns the data sources
/// (<see cref="Primary"/>, <see cref="Replica"/>). Thread-safe; one per process (registered by
/// <see cref="ReadRoutingServiceCollectionExtensions.AddReadRouting"/>).
/// </summary>
public sealed partial class ReadRouter : IAsyncDisposable
{
    private readonly IGrainFactory _grains;
    private readonly ReplayViews? _views;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _checkTimeout;
    private readonly SemaphoreSlim _refreshGate = new(1, 1);
    private readonly Lock _knownLock = new();
    private readonly Dictionary<string, NpgsqlDataSource> _replicas = new(StringComparer.Ordinal);

    // The primary's identity and the highest position it is known to have reached; null until first asked or observed.
    private CommittedWrite? _known;

    // The last refresh: when it started, and whether it answered.
    private long _lastRefreshStart = long.MinValue;
    private bool _lastRefreshAnswered;

    /// <summary>Creates the router and its data sources.</summary>
    /// <param name="grains">The cluster client, for the trackers.</param>
    /// <param name="options">The <c>OrleansLsn:Reads</c> options.</param>
    /// <param name="views">The client's replay views (for <see cref="ReadRoutingOptions.UseReplayView"/>); <see cref="ReplayViews.For"/> of <paramref name="grains"/> when <c>null</c>.</param>
    /// <param name="logger">Decisions are logged here at debug level, failures to ask the primary at warning.</param>
    /// <param name="timeProvider">The clock of waits (real time unless testing).</param>
    /// <exception cref="ArgumentException">The options are not valid (every problem named).</exception>
    public ReadRouter(IGrainFactory grains, IOptions<ReadRoutingOptions> options, ReplayViews? views = null, ILogger<ReadRouter>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(options);
        ReadRoutingOptions o = options.Value;
        ValidateOptionsResult result = new ReadRoutingOptionsValidator().Validate(null, o);
        if (result.Failed)
        {
            throw new ArgumentException("Invalid read routing options: " + string.Join(" ", result.Failures), nameof(options));
        }

        _grains = grains;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _checkTimeout = o.PrimaryCheckTimeout;
        _views = o.UseReplayView ? views ?? ReplayViews.For(grains) : null;
        Region = o.Region!;
        DefaultBound = new ReadBound(o.MaxWait, o.OnTimeout);
        Primary = Build(o.Primary!, "orleanslsn-primary");
        foreach ((string region, string connectionString) in o.Replicas)
        {
            if (!string.IsNullOrWhiteSpace(connectionString))
            {
                _replicas[region] = Build(connectionString, "orleanslsn-replica-" + region);
            }
        }

        Replica = _replicas[Region];
    }

    /// <summary>The region this process reads in.</summary>
    public string Region { get; }

    /// <summary>The bound of reads whose caller gives none (<see cref="ReadRoutingOptions.MaxWait"/>, <see cref="ReadRoutingOptions.OnTimeout"/>).</summary>
    public ReadBound DefaultBound { get; }

    /// <summary>The primary's data source (writes go here).</summary>
    public NpgsqlDataSource Primary { get; }

    /// <summary>The data source of the region's replica.</summary>
    public NpgsqlDataSource Replica { get; }

    /// <summary>Every configured replica's data source, by region.</summary>
    public IReadOnlyDictionary<string, NpgsqlDataSource> Replicas => _replicas;

    /// <summary>Starts the region's replay view now, so the first read with a token does not pay for its start.</summary>
    public void Warm() => _views?.Get(Region);

    /// <summary>
    /// Tells the router the primary has reached <paramref name="write"/> (a commit of this process), so a token up to it
    /// needs no question to the primary. The ASP.NET Core integration observes every write a request records.
    /// </summary>
    public void Observe(CommittedWrite write)
    {
        lock (_knownLock)
        {
            if (_known is not { } known || CommittedWrite.Supersedes(write.Lsn, write.Primary, known.Lsn, known.Primary))
            {
                _known = write;
            }
        }
    }

    /// <summary>
    /// Decides where a read with <paramref name="token"/> goes, waiting up to <paramref name="bound"/>'s
    /// <see cref="ReadBound.MaxWait"/> for the region's replica (plus, for a token ahead of every position seen, at most
    /// <see cref="ReadRoutingOptions.PrimaryCheckTimeout"/> to ask the primary). Never throws for the replica or the
    /// primary being slow or gone: a wait that cannot be asked ends as a timed-out one, a primary that cannot be asked
    /// leaves the token unchecked (the wait then decides).
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (the request was aborted).</exception>
    public async ValueTask<ReadDecision> DecideAsync(CausalToken? token, ReadBound? bound = null, CancellationToken cancellationToken = default)
    {
        ReadBound b = bound ?? DefaultBound;
        if (b.MaxWait < TimeSpan.Zero || b.MaxWait > ReplayView.MaxWaitTimeout || !Enum.IsDefined(b.OnTimeout))
        {
            throw new ArgumentOutOfRangeException(nameof(bound), b, $"A read's wait must be between 0 and {ReplayView.MaxWaitTimeout}, and its action Primary, Stale or Unavailable.");
        }

        if (token is not { } t)
        {
            return Decide(ReadOutcome.NoToken, TokenVerdict.None, null, b, null, TimeSpan.Zero, "the request carried no token: any replica has what it wrote");
        }

        long start = _time.GetTimestamp();
        ReplayView? view = _views?.Get(Region);
        if (view is not null && IsKnownPrimary(t) && view.Covers(t.Lsn))
        {
            return Decide(ReadOutcome.Replayed, TokenVerdict.Accepted, t, b, view.Replay, TimeSpan.Zero, "the replica had already replayed the token's write");
        }

        (TokenVerdict verdict, string? problem) = Check(t, fresh: false);
        if (verdict != TokenVerdict.Accepted || !IsWithinKnown(t))
        {
            // Ahead of what this process has seen, or not of the primary it knows: ask the primary (a query that
            // started after this token arrived; concurrent ones share it).
            if (await RefreshAsync(start, cancellationToken).ConfigureAwait(false))
            {
                (verdict, problem) = Check(t, fresh: true);
            }
            else if (verdict == TokenVerdict.Accepted)
            {
                problem = "the primary could not be asked for its position, so the token is unchecked";
            }
        }

        switch (verdict)
        {
            case TokenVerdict.Foreign:
                return Decide(ReadOutcome.NoToken, verdict, null, b, null, Elapsed(start), problem!);
            case TokenVerdict.EarlierTimeline or TokenVerdict.UnknownTimeline or TokenVerdict.BeyondPrimary:
                CommittedWrite? known;
                lock (_knownLock)
                {
                    known = _known;
                }

                ReadDecision refused = Decide(ReadOutcome.Primary, verdict, t, b, null, Elapsed(start), problem!);
                return known is { } position ? refused.WithReplacement(CausalToken.From(position)) : refused;
        }

        TimeSpan left = b.MaxWait - Elapsed(start);
        (bool ready, Lsn? replay, string? waitProblem) = left > TimeSpan.Zero
            ? await WaitAsync(view, t.Lsn, left, cancellationToken).ConfigureAwait(false)
            : (view?.Covers(t.Lsn) == true, view?.Replay, null);
        TimeSpan waited = Elapsed(start);
        string suffix = problem is null ? "" : $" ({problem})";
        if (ready)
        {
            return Decide(ReadOutcome.ReplayedAfterWait, verdict, t, b, replay, waited, "the replica replayed the token's write while the read waited" + suffix);
        }

        string missed = string.Create(
            CultureInfo.InvariantCulture,
            $"the replica had not replayed the token's write within {b.MaxWait.TotalMilliseconds:0.#} ms{(waitProblem is null ? "" : $" ({waitProblem})")}{suffix}");
        return b.OnTimeout switch
        {
            ReadTimeoutAction.Primary => Decide(ReadOutcome.Primary, verdict, t, b, replay, waited, missed + ": the primary reads"),
            ReadTimeoutAction.Stale => Decide(ReadOutcome.Stale, verdict, t, b, replay, waited, missed + ": the replica reads anyway, without it"),
            _ => Decide(ReadOutcome.Unavailable, verdict, t, b, replay, waited, missed + ": no read"),
        };
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await Primary.DisposeAsync().ConfigureAwait(false);
        foreach (NpgsqlDataSource replica in _replicas.Values)
        {
            await replica.DisposeAsync().ConfigureAwait(false);
        }

        _refreshGate.Dispose();
    }

    private static NpgsqlDataSource Build(string connectionString, string name)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString) { Name = name };
        return builder.Build();
    }

    private TimeSpan Elapsed(long start) => _time.GetElapsedTime(start);

    private ReadDecision Decide(ReadOutcome outcome, TokenVerdict verdict, CausalToken? token, ReadBound bound, Lsn? replay, TimeSpan waited, string why)
    {
        NpgsqlDataSource? source = outcome switch
        {
            ReadOutcome.Primary => Primary,
            ReadOutcome.Unavailable => null,
            _ => Replica,
        };
        var decision = new ReadDecision(outcome, verdict, Region, source, token, bound, replay, waited, why);
        LogDecided(_logger, decision);
        return decision;
    }

    private bool IsKnownPrimary(CausalToken token)
    {
        lock (_knownLock)
        {
            return _known is { } known && known.Primary == token.Primary;
        }
    }

    private bool IsWithinKnown(CausalToken token)
    {
        lock (_knownLock)
        {
            return _known is { } known && known.Primary == token.Primary && token.Lsn <= known.Lsn;
        }
    }

    // What the token is against the primary as known. With fresh false only identity problems are final (a position
    // ahead of the known one may just be newer than what was seen); with fresh true the known position was read after
    // the token arrived, so a token past it claims a write the primary does not have.
    private (TokenVerdict Verdict, string? Problem) Check(CausalToken token, bool fresh)
    {
        CommittedWrite? snapshot;
        lock (_knownLock)
        {
            snapshot = _known;
        }

        if (snapshot is not { } known)
        {
            return (TokenVerdict.Accepted, null);
        }

        if (token.Primary.SystemIdentifier != known.Primary.SystemIdentifier)
        {
            return (TokenVerdict.Foreign, string.Create(CultureInfo.InvariantCulture,
                $"the token is of another database cluster (system {token.Primary.SystemIdentifier}, the primary's is {known.Primary.SystemIdentifier}): ignored, the request treated as carrying none"));
        }

        if (token.Primary.Timeline < known.Primary.Timeline)
        {
            return (TokenVerdict.EarlierTimeline, string.Create(CultureInfo.InvariantCulture,
                $"the token was written on timeline {token.Primary.Timeline}, before a failover to timeline {known.Primary.Timeline}: only the primary surely has what survived"));
        }

        if (token.Primary.Timeline > known.Primary.Timeline)
        {
            return fresh
                ? (TokenVerdict.UnknownTimeline, string.Create(CultureInfo.InvariantCulture,
                    $"the token is of timeline {token.Primary.Timeline}, which the primary (timeline {known.Primary.Timeline}) is not on: refused, the primary reads"))
                : (TokenVerdict.Accepted, null);
        }

        if (fresh && token.Lsn > known.Lsn)
        {
            return (TokenVerdict.BeyondPrimary, $"the token's LSN {token.Lsn} is past the primary's current position {known.Lsn} (restored or rewound): refused, the primary reads");
        }

        return (TokenVerdict.Accepted, null);
    }

    // Reads the primary's position with a query that starts after `arrival`; callers waiting meanwhile share the next one.
    private async Task<bool> RefreshAsync(long arrival, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_checkTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            await _refreshGate.WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }

        try
        {
            if (_lastRefreshStart >= arrival)
            {
                return _lastRefreshAnswered;
            }

            _lastRefreshStart = _time.GetTimestamp();
            _lastRefreshAnswered = false;
            NpgsqlConnection connection = await Primary.OpenConnectionAsync(linked.Token).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                CommittedWrite position = await PrimaryLsn.GetCommittedWriteAsync(connection, linked.Token).ConfigureAwait(false);
                lock (_knownLock)
                {
                    // The primary's own answer wins over what was observed, even on another identity (a failover).
                    _known = _known is { } known && known.Primary == position.Primary && known.Lsn > position.Lsn ? known : position;
                }
            }

            _lastRefreshAnswered = true;
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException && !cancellationToken.IsCancellationRequested)
        {
            LogPrimaryUnreachable(_logger, e.GetType().Name, e.Message);
            return false;
        }
        finally
        {
            _refreshGate.Release();
        }
    }

    private async Task<(bool Ready, Lsn? Replay, string? Problem)> WaitAsync(ReplayView? view, Lsn lsn, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            if (_views is not null)
            {
                LsnWaitResult viewed = await _views.WaitAsync(Region, lsn, timeout, cancellationToken).ConfigureAwait(false);
                return (viewed.IsReady, viewed.ReplayLsn ?? view?.Replay, null);
            }

            // The tracker ends the wait at `timeout`; this bounds a call whose answer never comes (its silo died).
            using var callDeadline = new CancellationTokenSource(timeout + TimeSpan.FromSeconds(1), _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, callDeadline.Token);
            LsnWaitResult result = await _grains.GetGrain<ILsnTrackerGrain>(Region).RequestAndAwait(lsn, timeout, linked.Token).ConfigureAwait(false);
            return (result.IsReady, result.ReplayLsn, null);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && (e is OperationCanceledException or RegionUnavailableException || ReadYourWritesSession.IsRetryable(e)))
        {
            LogWaitFailed(_logger, Region, lsn, e.GetType().Name, e.Message);
            return (false, view?.Replay, $"the wait failed: {e.GetType().Name}");
        }
    }

    [LoggerMessage(EventId = ClientEventIds.ReadDecided, Level = LogLevel.Debug, Message = "Read decided: {Decision}")]
    private static partial void LogDecided(ILogger logger, ReadDecision decision);

    [LoggerMessage(EventId = ClientEventIds.PrimaryUnreachable, Level = LogLevel.Warning, Message = "The primary could not be asked for its position ({Error}: {Message}); the token is left unchecked and the replica's wait decides")]
    private static partial void LogPrimaryUnreachable(ILogger logger, string error, string message);

    [LoggerMessage(EventId = ClientEventIds.ReadWaitFailed, Level = LogLevel.Warning, Message = "The wait for {Region} to replay {Lsn} failed ({Error}: {Message}); the read is decided as timed out")]
    private static partial void LogWaitFailed(ILogger logger, string region, Lsn lsn, string error, string message);
}
