using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Runtime.Messaging;

namespace OrleansLsn.Client;

/// <summary>
/// Read-your-writes for one logical session (a user, a request chain): writes go to the primary, and a read in a region
/// gets that region's replica once it has replayed the session's last write. By default the client's
/// <see cref="ReplayView"/> of the region decides (no grain call when the replica already has the write, a local waiter
/// otherwise); with <see cref="ReadYourWritesOptions.UseReplayView"/> off each read asks the region's
/// <see cref="ILsnTrackerGrain"/>. Cheap to create (one per session); the data sources and views are shared. Thread-safe.
/// </summary>
/// <example>
/// <code>
/// var session = new ReadYourWritesSession(client, primary, new Dictionary&lt;string, NpgsqlDataSource&gt; { ["eu-west"] = euWest });
/// await session.ExecuteWriteAsync(async c =&gt; await new NpgsqlCommand("insert into orders ...", c).ExecuteNonQueryAsync());
/// await using NpgsqlConnection read = await session.OpenReadConnectionAsync("eu-west");   // sees the order
/// </code>
/// </example>
public sealed partial class ReadYourWritesSession
{
    /// <summary>Below this, what is left of the deadline is not worth a call.</summary>
    private static readonly TimeSpan MinimumWait = TimeSpan.FromMilliseconds(1);

    private readonly IGrainFactory _grains;
    private readonly NpgsqlDataSource _primary;
    private readonly Dictionary<string, NpgsqlDataSource> _replicas;
    private readonly string _regionList;
    private readonly TimeSpan _waitTimeout;
    private readonly ReadYourWritesTimeoutPolicy _onTimeout;
    private readonly TimeSpan _retryInitialDelay;
    private readonly TimeSpan _retryMaxDelay;
    private readonly TimeSpan _callGrace;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ReplayViews? _views;
    private readonly string[] _replicaOrder;

    // The highest LSN recorded by this session (0 = none); only ever grows.
    private ulong _lastWrite;

    /// <summary>Creates a session.</summary>
    /// <param name="grains">The cluster client (or any grain factory) through which the trackers are asked.</param>
    /// <param name="primary">The primary: <see cref="ExecuteWriteAsync"/> writes there, and <see cref="ReadYourWritesTimeoutPolicy.UsePrimary"/> reads there.</param>
    /// <param name="replicas">Each region's replica, by region name (the tracker grain's key). Copied.</param>
    /// <param name="options">Wait timeout, timeout policy and retry pacing; the defaults when <see langword="null"/>.</param>
    /// <param name="logger">Retries and timeouts are logged here.</param>
    /// <param name="timeProvider">The clock of the deadline and the retry pauses (real time unless testing).</param>
    /// <param name="views">The client's replay views; <see langword="null"/> for <see cref="ReplayViews.For"/> of <paramref name="grains"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="replicas"/> is empty or has an empty name or a null data source, <paramref name="options"/> is not valid (every problem named), or its <see cref="ReadYourWritesOptions.ReplicaOrder"/> names a region without a replica.</exception>
    public ReadYourWritesSession(
        IGrainFactory grains,
        NpgsqlDataSource primary,
        IReadOnlyDictionary<string, NpgsqlDataSource> replicas,
        ReadYourWritesOptions? options = null,
        ILogger<ReadYourWritesSession>? logger = null,
        TimeProvider? timeProvider = null,
        ReplayViews? views = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(primary);
        ArgumentNullException.ThrowIfNull(replicas);
        options ??= new ReadYourWritesOptions();
        var result = new ReadYourWritesOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new ArgumentException("Invalid read-your-writes options: " + string.Join(" ", result.Failures), nameof(options));
        }

        if (replicas.Count == 0)
        {
            throw new ArgumentException("At least one region's replica is required.", nameof(replicas));
        }

        _replicas = new Dictionary<string, NpgsqlDataSource>(StringComparer.Ordinal);
        foreach ((string region, NpgsqlDataSource replica) in replicas)
        {
            if (string.IsNullOrWhiteSpace(region) || replica is null)
            {
                throw new ArgumentException("Every replica needs a region name and a data source.", nameof(replicas));
            }

            _replicas.Add(region, replica);
        }

        _grains = grains;
        _primary = primary;
        _regionList = string.Join(", ", _replicas.Keys.Order(StringComparer.Ordinal).Select(r => "'" + r + "'"));
        _waitTimeout = options.WaitTimeout;
        _onTimeout = options.OnTimeout;
        _retryInitialDelay = options.RetryInitialDelay;
        _retryMaxDelay = options.RetryMaxDelay;
        _callGrace = options.CallGrace;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _views = options.UseReplayView ? views ?? ReplayViews.For(grains) : null;
        foreach (string listed in options.ReplicaOrder)
        {
            if (!_replicas.ContainsKey(listed))
            {
                throw new ArgumentException($"ReplicaOrder names region '{listed}', which has no replica in this session. Configured regions: {_regionList}.", nameof(options));
            }
        }

        _replicaOrder = [.. options.ReplicaOrder.Distinct(StringComparer.Ordinal), .. _replicas.Keys.Where(r => !options.ReplicaOrder.Contains(r)).Order(StringComparer.Ordinal)];
    }

    /// <summary>The regions this session can read in.</summary>
    public IReadOnlyCollection<string> Regions => _replicas.Keys;

    /// <summary>
    /// The highest LSN recorded so far (what a read waits for), or <see langword="null"/> if the session wrote nothing.
    /// Carry it to another process (as text) and <see cref="RecordWrite"/> it there to continue the session.
    /// </summary>
    public Lsn? LastWrite => Volatile.Read(ref _lastWrite) is ulong value and not 0 ? new Lsn(value) : null;

    /// <summary>Records an LSN the session must see from now on (kept if higher than what the session has).</summary>
    /// <exception cref="ArgumentException"><paramref name="lsn"/> is <see cref="Lsn.Invalid"/>.</exception>
    public void RecordWrite(Lsn lsn)
    {
        if (!lsn.IsValid)
        {
            throw new ArgumentException("LSN 0/0 (Lsn.Invalid) is not a WAL position.", nameof(lsn));
        }

        ulong current = Volatile.Read(ref _lastWrite);
        while (lsn.Value > current)
        {
            ulong seen = Interlocked.CompareExchange(ref _lastWrite, lsn.Value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>
    /// Records the write just committed on <paramref name="primaryConnection"/>: takes
    /// <see cref="PrimaryLsn.GetCurrentInsertLsnAsync"/> and keeps the highest one. Call it after your commit, outside
    /// any transaction that wrote.
    /// </summary>
    /// <returns>The LSN taken (the session keeps the higher of it and what it had).</returns>
    /// <exception cref="InvalidOperationException">The connection is not open, or is inside a transaction that has written.</exception>
    public async Task<Lsn> RecordWriteAsync(NpgsqlConnection primaryConnection, CancellationToken cancellationToken = default)
    {
        Lsn lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primaryConnection, cancellationToken).ConfigureAwait(false);
        RecordWrite(lsn);
        return lsn;
    }

    /// <summary>
    /// Commits <paramref name="transaction"/> (on the primary) and records its write, in the commit's own round trip
    /// (<see cref="PrimaryLsn.CommitAsync"/>).
    /// </summary>
    /// <returns>The write, or <c>null</c> when the transaction wrote nothing (committed; nothing recorded).</returns>
    public async Task<CommittedWrite?> CommitAsync(NpgsqlTransaction transaction, CancellationToken cancellationToken = default)
    {
        CommittedWrite? write = await PrimaryLsn.CommitAsync(transaction, cancellationToken).ConfigureAwait(false);
        if (write is { } committed)
        {
            RecordWrite(committed.Lsn);
        }

        return write;
    }

    /// <summary>
    /// Runs <paramref name="write"/> on a new primary connection (commit inside it: autocommit statements, or a
    /// transaction you commit), then records the write. If <paramref name="write"/> throws, the session still records
    /// the primary's current position (best effort, on a fresh connection) so that whatever it did commit is seen
    /// by later reads, and the exception is rethrown.
    /// </summary>
    public async Task ExecuteWriteAsync(Func<NpgsqlConnection, Task> write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        await ExecuteWriteAsync<bool>(
            async connection =>
            {
                await write(connection).ConfigureAwait(false);
                return true;
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="write"/> on a new primary connection and records the write; see <see cref="ExecuteWriteAsync(Func{NpgsqlConnection, Task}, CancellationToken)"/>.</summary>
    public async Task<T> ExecuteWriteAsync<T>(Func<NpgsqlConnection, Task<T>> write, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        T result;
        NpgsqlConnection connection = await _primary.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            result = await write(connection).ConfigureAwait(false);
            await RecordWriteAsync(connection, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception writeError)
        {
            // Disposing rolls back a transaction left open; anything committed before is at or before the position now.
            await connection.DisposeAsync().ConfigureAwait(false);
            await RecordAfterFailureAsync(writeError).ConfigureAwait(false);
            throw;
        }

        await connection.DisposeAsync().ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Opens a connection to the replica of <paramref name="region"/> once it has replayed this session's last write; see
    /// <see cref="OpenReadAsync"/>, which also tells where the read went and why.
    /// </summary>
    /// <returns>An open connection the caller disposes.</returns>
    /// <exception cref="ArgumentException"><paramref name="region"/> has no replica in this session (the message lists those that do).</exception>
    /// <exception cref="ReadYourWritesTimeoutException">The replica had not replayed the write in time (policy <see cref="ReadYourWritesTimeoutPolicy.Throw"/>).</exception>
    /// <exception cref="RegionUnavailableException">No silo of the region is active (not retried: the region is down, not failing over).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<NpgsqlConnection> OpenReadConnectionAsync(string region, CancellationToken cancellationToken = default) =>
        (await OpenReadAsync(region, cancellationToken).ConfigureAwait(false)).Connection;

    /// <summary>
    /// Opens a read connection for <paramref name="region"/> that sees this session's last write, and says where it went
    /// and why (log <see cref="ReadYourWritesRead.ToString"/>; the metric <c>orleanslsn.client.reads</c> counts reads by
    /// route). With no write recorded: the region's replica at once. Otherwise, by
    /// <see cref="ReadYourWritesOptions.OnTimeout"/>:
    /// <list type="bullet">
    /// <item><see cref="ReadYourWritesTimeoutPolicy.Throw"/> and <see cref="ReadYourWritesTimeoutPolicy.UsePrimary"/>: the
    /// region's replica once it has replayed the write, waiting at most <see cref="ReadYourWritesOptions.WaitTimeout"/>;
    /// then <see cref="ReadYourWritesTimeoutException"/>, or the primary.</item>
    /// <item><see cref="ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary"/>: without waiting, the region's replica if
    /// its view has the write, else the first other replica (in <see cref="ReadYourWritesOptions.ReplicaOrder"/>) whose
    /// view has it, else the primary.</item>
    /// </list>
    /// Never a replica that lacks the write.
    /// </summary>
    /// <returns>The open connection (the caller disposes it, or the returned object) and its route.</returns>
    /// <exception cref="ArgumentException"><paramref name="region"/> has no replica in this session (the message lists those that do).</exception>
    /// <exception cref="ReadYourWritesTimeoutException">The replica had not replayed the write in time (policy <see cref="ReadYourWritesTimeoutPolicy.Throw"/>).</exception>
    /// <exception cref="RegionUnavailableException">No silo of the region is active (not retried: the region is down, not failing over).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<ReadYourWritesRead> OpenReadAsync(string region, CancellationToken cancellationToken = default)
    {
        // One span per read when traced (source OrleansLsn.Client): the decision, the wait and the grain calls under it.
        using Activity? activity = ClientTracing.Source.StartActivity(ClientTracing.ReadSpan);
        if (activity is null)
        {
            return await OpenReadCoreAsync(region, cancellationToken).ConfigureAwait(false);
        }

        activity.SetTag("orleanslsn.region", region);
        try
        {
            ReadYourWritesRead read = await OpenReadCoreAsync(region, cancellationToken).ConfigureAwait(false);
            ClientTracing.Describe(activity, read);
            return read;
        }
        catch (Exception e)
        {
            ClientTracing.Failed(activity, e);
            throw;
        }
    }

    private async Task<ReadYourWritesRead> OpenReadCoreAsync(string region, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(region);
        if (!_replicas.TryGetValue(region, out NpgsqlDataSource? replica))
        {
            throw new ArgumentException($"Region '{region}' has no replica in this session. Configured regions: {_regionList}.", nameof(region));
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (LastWrite is not Lsn lsn)
        {
            return await OpenAsync(replica, region, region, ReadRoute.Replica, ReadReason.NoWrite, null, null, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        }

        if (_onTimeout == ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary)
        {
            return await OpenAnyAsync(region, replica, lsn, cancellationToken).ConfigureAwait(false);
        }

        long start = _time.GetTimestamp();
        WaitEnd end = _views is not null
            ? await WaitThroughViewAsync(region, lsn, cancellationToken).ConfigureAwait(false)
            : await WaitForReplayAsync(region, lsn, cancellationToken).ConfigureAwait(false);
        TimeSpan waited = end.AtOnce ? TimeSpan.Zero : _time.GetElapsedTime(start);
        if (end.Ready)
        {
            ReadReason reason = end.AtOnce ? ReadReason.Replayed : ReadReason.ReplayedAfterWait;
            return await OpenAsync(replica, region, region, ReadRoute.Replica, reason, lsn, end.Replay, waited, cancellationToken).ConfigureAwait(false);
        }

        if (_onTimeout == ReadYourWritesTimeoutPolicy.UsePrimary)
        {
            Log.ReadingFromPrimary(_logger, region, lsn, _waitTimeout.TotalMilliseconds, end.Replay?.ToString() ?? "unknown");
            return await OpenAsync(_primary, region, null, ReadRoute.Primary, ReadReason.TimedOut, lsn, end.Replay, waited, cancellationToken).ConfigureAwait(false);
        }

        Log.TimedOut(_logger, region, lsn, _waitTimeout.TotalMilliseconds, end.Replay?.ToString() ?? "unknown");
        RecordRead(region, null, ReadRoute.Primary, ReadReason.TimedOut, failed: true);
        throw new ReadYourWritesTimeoutException(region, lsn, end.Replay, _waitTimeout, end.LastError);
    }

    private async Task<ReadYourWritesRead> OpenAnyAsync(string region, NpgsqlDataSource replica, Lsn lsn, CancellationToken cancellationToken)
    {
        ReplayView preferred = _views!.Get(region);
        if (preferred.Covers(lsn))
        {
            return await OpenAsync(replica, region, region, ReadRoute.Replica, ReadReason.Replayed, lsn, preferred.Replay, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        }

        foreach (string other in _replicaOrder)
        {
            if (other == region)
            {
                continue;
            }

            ReplayView view = _views.Get(other);
            if (view.Covers(lsn))
            {
                return await OpenAsync(_replicas[other], region, other, ReadRoute.OtherReplica, ReadReason.OtherReplicaHadWrite, lsn, view.Replay, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
            }
        }

        return await OpenAsync(_primary, region, null, ReadRoute.Primary, ReadReason.NoReplicaHadWrite, lsn, preferred.Replay, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ReadYourWritesRead> OpenAsync(
        NpgsqlDataSource source, string requested, string? region, ReadRoute route, ReadReason reason, Lsn? lsn, Lsn? replay, TimeSpan waited, CancellationToken cancellationToken)
    {
        NpgsqlConnection connection = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        var read = new ReadYourWritesRead(connection, requested, region, route, reason, lsn, replay, waited);
        RecordRead(requested, region, route, reason, failed: false);
        Log.ReadRouted(_logger, read);
        return read;
    }

    private static void RecordRead(string requested, string? region, ReadRoute route, ReadReason reason, bool failed)
    {
        if (ClientMetrics.Reads.Enabled)
        {
            var tags = new TagList
            {
                { "orleanslsn.region", requested },
                { "orleanslsn.route", failed ? "none" : route.ToString().ToLowerInvariant() },
                { "orleanslsn.reason", reason.ToString() },
                { "orleanslsn.read_region", region ?? "primary" },
            };
            ClientMetrics.Reads.Add(1, tags);
        }
    }

    private async Task<WaitEnd> WaitThroughViewAsync(string region, Lsn lsn, CancellationToken cancellationToken)
    {
        ValueTask<LsnWaitResult> wait = _views!.WaitAsync(region, lsn, _waitTimeout, cancellationToken);
        bool atOnce = wait.IsCompletedSuccessfully;
        LsnWaitResult result = await wait.ConfigureAwait(false);
        return new WaitEnd(result.IsReady, result.ReplayLsn, null, atOnce);
    }

    /// <summary>Failures after which the same wait is simply asked again: the call did not reach a live activation.</summary>
    internal static bool IsRetryable(Exception exception) => exception is not RegionUnavailableException
        and (SiloUnavailableException
            or OrleansMessageRejectionException
            or TimeoutException
            or ConnectionFailedException
            or GatewayTooBusyException);

    private async Task<WaitEnd> WaitForReplayAsync(string region, Lsn lsn, CancellationToken cancellationToken)
    {
        long start = _time.GetTimestamp();
        ILsnTrackerGrain tracker = _grains.GetGrain<ILsnTrackerGrain>(region);
        TimeSpan pause = _retryInitialDelay;
        Lsn? replay = null;
        Exception? lastError = null;
        int attempt = 0;
        while (true)
        {
            // The deadline is the caller's: never give up before it, whatever the clocks' granularity.
            TimeSpan remaining = _waitTimeout - _time.GetElapsedTime(start);
            if (remaining <= TimeSpan.Zero)
            {
                return new WaitEnd(false, replay, lastError, false);
            }

            if (remaining < MinimumWait)
            {
                await Task.Delay(remaining, _time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            attempt++;

            // The tracker ends the wait at `remaining`; this bounds a call whose answer never comes (its silo died).
            using var callDeadline = new CancellationTokenSource(remaining + _callGrace, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, callDeadline.Token);
            try
            {
                LsnWaitResult result = await tracker.RequestAndAwait(lsn, remaining, linked.Token).ConfigureAwait(false);
                if (result.IsReady)
                {
                    if (attempt > 1)
                    {
                        Log.ReadyAfterRetries(_logger, region, lsn, attempt, _time.GetElapsedTime(start).TotalMilliseconds);
                    }

                    return new WaitEnd(true, result.ReplayLsn, null, false);
                }

                replay = result.ReplayLsn ?? replay;
                if (_waitTimeout - _time.GetElapsedTime(start) < MinimumWait)
                {
                    continue; // timed out at the deadline, as asked
                }

                // A tracker never times a wait out early; one that ends before its timeout stopped (its activation
                // deactivated or its silo is shutting down). Ask again for what is left: the next call activates it anew.
                Log.WaitEndedEarly(_logger, region, lsn, attempt);
            }
            catch (OperationCanceledException) when (callDeadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                continue; // no answer within the deadline
            }
            catch (Exception e) when (IsRetryable(e))
            {
                lastError = e;
                Log.WaitFailed(_logger, region, lsn, attempt, e.GetType().Name, e.Message);
            }

            TimeSpan left = _waitTimeout - _time.GetElapsedTime(start);
            if (left > TimeSpan.Zero)
            {
                await Task.Delay(pause < left ? pause : left, _time, cancellationToken).ConfigureAwait(false);
            }

            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, _retryMaxDelay.Ticks));
        }
    }

    private async Task RecordAfterFailureAsync(Exception writeError)
    {
        try
        {
            // Not the caller's token: it may be what failed the write, and the position is what keeps later reads honest.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), _time);
            await using NpgsqlConnection fresh = await _primary.OpenConnectionAsync(timeout.Token).ConfigureAwait(false);
            await RecordWriteAsync(fresh, timeout.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Best effort: the write's own exception is what the caller gets.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.RecordAfterFailureFailed(_logger, writeError.GetType().Name, e.GetType().Name, e.Message);
        }
    }

    [DebuggerDisplay("Ready = {Ready}, Replay = {Replay}")]
    private readonly record struct WaitEnd(bool Ready, Lsn? Replay, Exception? LastError, bool AtOnce);
}
