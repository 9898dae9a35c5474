using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansLsn.Waiting;

namespace OrleansLsn.Client;

/// <summary>
/// One region's replay position, kept in the client process by pushes from the region's tracker
/// (<see cref="ILsnTrackerGrain.WatchReplay"/>), and the waits decided on it: a wait for an LSN the view already covers
/// returns at once with no grain call, a later one is a local waiter (about 150 B) released when a push reaches it.
/// Get one from <see cref="ReplayViews"/>; there is one per region per client, shared by every session. Thread-safe.
/// <para>
/// The view is never ahead of the replica: it holds only states the tracker sent (ordered by the tracker's version, so
/// it follows the tracker down when the replica was replaced by one that is behind). While waits are pending it tells
/// the tracker the highest LSN it needs (one call in flight, never one per wait), and the tracker pushes every advance
/// until then and polls the replica at its active rate. When pushes stop (the tracker's silo died, the registration was
/// dropped, the gateway was lost) the view registers again and answers its lowest wait through
/// <see cref="ILsnTrackerGrain.RequestAndAwait"/> until pushes resume. Every wait ends exactly once: ready, timed out at
/// its timeout (never before, never much after), cancelled, or failed with <see cref="RegionUnavailableException"/>.
/// </para>
/// </summary>
public sealed partial class ReplayView : IWaiterOwner
{
    /// <summary>The longest wait a view accepts (the tracker's maximum).</summary>
    public static readonly TimeSpan MaxWaitTimeout = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan TickDuration = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan MinimumLease = TimeSpan.FromMilliseconds(100);

    private readonly Lock _lock = new();
    private readonly IGrainFactory _grains;
    private readonly ReplayViews _owner;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ReplayViewOptions _options;
    private readonly WaiterIndex _index;
    private readonly long _origin;
    private readonly long _timestampsPerTick;
    private readonly ITimer _expiryTimer;
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Relay _relay;
    private readonly IReplayViewObserver _reference;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TagList _tags;

    // Guarded by _lock.
    private bool _expiryTimerRunning;
    private bool _retired;
    private Lsn _maxTarget;
    private long _maxDeadline;
    private Task? _pull;

    // Replaced (never mutated) under _lock; read without it.
    private volatile Snapshot _snapshot = Snapshot.Unknown;
    private volatile RegionUnavailableException? _regionError;

    // Timestamps (0 = never) and the demand in force, written by the loop and pushes, read anywhere.
    private long _lastHeard;
    private long _lastPush;
    private long _staleSince;
    private long _lastUsed;
    private ulong _demandUntil;
    private long _demandLeaseEnd;

    // 1 while a WatchReplay call is in flight (from the loop or from a waiting thread): one call at a time per view, so
    // an older demand never arrives after a newer one.
    private int _callGate;

    // When the registration is due for renewal (a timestamp; 0 = register now): set by any successful call.
    private long _renewAt;

    // The last call to the tracker failed: only the loop calls (with backoff) until one succeeds, so that new waits
    // during an outage never become a stream of calls.
    private volatile bool _failing;

    private long _pushes;
    private long _calls;
    private long _pulls;

    internal ReplayView(IGrainFactory grains, string region, ReplayViews owner, ReplayViewOptions options, ILogger logger)
    {
        _grains = grains;
        Region = region;
        _owner = owner;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _time = options.TimeProvider ?? TimeProvider.System;
        _origin = _time.GetTimestamp();
        _lastUsed = _origin;
        _timestampsPerTick = Math.Max(1, (long)(_time.TimestampFrequency * TickDuration.TotalSeconds));
        _index = new WaiterIndex(startTick: 0);
        _tags = new TagList { { "orleanslsn.region", region } };
        _relay = new Relay(this);
        _reference = grains.CreateObjectReference<IReplayViewObserver>(_relay);

        // The view outlives the read that started it: its timer and its loop (and the loop's calls to the tracker) belong
        // to no read's trace.
        Activity? caller = Activity.Current;
        Activity.Current = null;
        try
        {
            _expiryTimer = _time.CreateTimer(static s => ((ReplayView)s!).OnExpiryTick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _ = RunAsync();
        }
        finally
        {
            Activity.Current = caller;
        }
    }

    /// <summary>The region whose tracker this view follows.</summary>
    public string Region { get; }

    /// <summary>The replica's replay position as last told by the tracker; <see langword="null"/> before the first state.</summary>
    public Lsn? Replay => _snapshot.Replay;

    /// <summary>Whether the tracker last said the region's server is a primary (every LSN counts as replicated).</summary>
    public bool IsPrimary => _snapshot.IsPrimary;

    /// <summary>Time since the tracker last told the view its state (a push or an answer); <see cref="TimeSpan.MaxValue"/> if never.</summary>
    public TimeSpan Age => Volatile.Read(ref _lastHeard) is long heard and not 0 ? _time.GetElapsedTime(heard) : TimeSpan.MaxValue;

    /// <summary>Waits pending in this view.</summary>
    public int PendingWaits
    {
        get
        {
            lock (_lock)
            {
                return _index.Count;
            }
        }
    }

    /// <summary>States pushed by the tracker so far.</summary>
    public long Pushes => Interlocked.Read(ref _pushes);

    /// <summary>Calls to <see cref="ILsnTrackerGrain.WatchReplay"/> so far (registrations, renewals and demands).</summary>
    public long WatchCalls => Interlocked.Read(ref _calls);

    /// <summary>Calls to <see cref="ILsnTrackerGrain.RequestAndAwait"/> made while pushes were missing.</summary>
    public long PullCalls => Interlocked.Read(ref _pulls);

    /// <summary>The object reference the tracker holds (tests act on it behind the view's back).</summary>
    internal IReplayViewObserver ObserverReference => _reference;

    /// <summary>Whether the view already knows the replica has replayed <paramref name="lsn"/>. Never a call.</summary>
    public bool Covers(Lsn lsn) => _snapshot.Covers(lsn);

    /// <summary>
    /// Waits until the region's replica has replayed <paramref name="lsn"/> or <paramref name="timeout"/> elapses.
    /// Completes synchronously, with no grain call, when the view already covers it.
    /// </summary>
    /// <returns><see cref="LsnWaitOutcome.Ready"/> with the replay position that covered it, or
    /// <see cref="LsnWaitOutcome.TimedOut"/> at <paramref name="timeout"/> with the last position the view knew.</returns>
    /// <exception cref="ArgumentException"><paramref name="lsn"/> is <see cref="Lsn.Invalid"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is not positive or exceeds <see cref="MaxWaitTimeout"/>.</exception>
    /// <exception cref="RegionUnavailableException">No silo of the region is active (the view's last call to its tracker said so).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the waiter is gone at once.</exception>
    /// <exception cref="ObjectDisposedException">The view was retired (idle) or its client stopped; <see cref="ReplayViews.WaitAsync"/> retries on a new view.</exception>
    public ValueTask<LsnWaitResult> WaitAsync(Lsn lsn, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (!lsn.IsValid)
        {
            throw new ArgumentException("LSN 0/0 (Lsn.Invalid, the default value) is not a WAL position.", nameof(lsn));
        }

        if (timeout <= TimeSpan.Zero || timeout > MaxWaitTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"The wait timeout must be positive and at most {MaxWaitTimeout}.");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<LsnWaitResult>(cancellationToken);
        }

        Snapshot snapshot = _snapshot;
        if (snapshot.Covers(lsn))
        {
            ClientMetrics.ViewWaits.Add(1, ClientMetrics.Tag(_tags, "orleanslsn.outcome", "ready_at_once"));
            return new ValueTask<LsnWaitResult>(snapshot.ReadyResult);
        }

        // A wait that has to wait gets a span when traced; it is current while the demand goes out, so that the call to
        // the tracker it may cause is its child, and no longer (this method is not async).
        Activity? caller = Activity.Current;
        Activity? activity = ClientTracing.Source.StartActivity(ClientTracing.ViewWaitSpan);
        if (activity is null)
        {
            return WaitPending(lsn, timeout, cancellationToken);
        }

        try
        {
            activity.SetTag("orleanslsn.region", Region);
            activity.SetTag("orleanslsn.lsn", lsn.ToString());
            return TraceWaitAsync(WaitPending(lsn, timeout, cancellationToken), activity);
        }
        catch (Exception e)
        {
            ClientTracing.Failed(activity, e);
            activity.Dispose();
            throw;
        }
        finally
        {
            Activity.Current = caller;
        }
    }

    private static async ValueTask<LsnWaitResult> TraceWaitAsync(ValueTask<LsnWaitResult> wait, Activity activity)
    {
        try
        {
            LsnWaitResult result = await wait.ConfigureAwait(false);
            ClientTracing.Describe(activity, result);
            return result;
        }
        catch (Exception e)
        {
            ClientTracing.Failed(activity, e);
            throw;
        }
        finally
        {
            activity.Dispose();
        }
    }

    private ValueTask<LsnWaitResult> WaitPending(Lsn lsn, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Snapshot snapshot;
        long now = _time.GetTimestamp();
        Volatile.Write(ref _lastUsed, now);
        if (_regionError is { } regionError)
        {
            throw Copy(regionError);
        }

        var waiter = new AsyncWaiter(this, lsn, now);
        long timeoutTimestamps = (long)(timeout.TotalSeconds * _time.TimestampFrequency);
        bool signal;
        Lsn maxTarget;
        long maxDeadline;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_retired, this);
            snapshot = _snapshot;
            if (snapshot.Covers(lsn))
            {
                return new ValueTask<LsnWaitResult>(snapshot.ReadyResult);
            }

            long nowTick = (now - _origin) / _timestampsPerTick;
            long deadline = now + timeoutTimestamps;
            if (_index.Count == 0)
            {
                _index.ResetClock(nowTick);
                _maxTarget = lsn;
                _maxDeadline = deadline;
            }
            else
            {
                _maxTarget = lsn > _maxTarget ? lsn : _maxTarget;
                _maxDeadline = Math.Max(_maxDeadline, deadline);
            }

            // Rounded up to a whole tick: the wheel never fires before the timeout has elapsed.
            _index.Add(waiter, (now - _origin + timeoutTimestamps + _timestampsPerTick - 1) / _timestampsPerTick);
            if (!_expiryTimerRunning)
            {
                _expiryTimerRunning = true;
                _expiryTimer.Change(TickDuration, TickDuration);
            }

            // Only a wait the demand in force does not cover needs the loop: never one call per wait.
            signal = lsn.Value > Volatile.Read(ref _demandUntil) || now >= Volatile.Read(ref _demandLeaseEnd) || _index.Count == 1;
            maxTarget = _maxTarget;
            maxDeadline = _maxDeadline;
        }

        if (signal && !TrySendDemandNow(maxTarget, maxDeadline, now))
        {
            Signal();
        }

        if (cancellationToken.CanBeCanceled)
        {
            CancellationTokenRegistration registration = waiter.RegisterCancellation(cancellationToken);
            lock (_lock)
            {
                if (waiter.InIndex)
                {
                    waiter.Registration = registration;
                    registration = default;
                }
            }

            registration.Unregister();
        }

        return waiter.AsValueTask();
    }

    void IWaiterOwner.Cancel(AsyncWaiter waiter, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_index.Remove(waiter))
            {
                return;
            }
        }

        ClientMetrics.ViewWaits.Add(1, ClientMetrics.Tag(_tags, "orleanslsn.outcome", "cancelled"));
        waiter.CompleteCanceled(cancellationToken);
    }

    /// <summary>Stops following the tracker: the loop ends, the registration is withdrawn (best effort), pending waits time out now.</summary>
    internal async Task StopAsync()
    {
        Waiter? pending;
        lock (_lock)
        {
            _retired = true;
            pending = _index.ReleaseAll();
            if (_expiryTimerRunning)
            {
                _expiryTimerRunning = false;
                _expiryTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        CompleteAll(pending, new LsnWaitResult(LsnWaitOutcome.TimedOut, _snapshot.Replay), "timed_out");
        await _stop.CancelAsync().ConfigureAwait(false);
        Signal();
        await _stopped.Task.ConfigureAwait(false);
    }

    private ILsnTrackerGrain Tracker => _grains.GetGrain<ILsnTrackerGrain>(Region);

    /// <summary>
    /// Sends the demand from the waiting thread when no call is in flight: a wait for a new LSN then costs one call, not
    /// a hop to the loop first. The loop handles everything else (failures, staleness, renewals).
    /// </summary>
    private bool TrySendDemandNow(Lsn maxTarget, long maxDeadline, long now)
    {
        if (_failing || Interlocked.CompareExchange(ref _callGate, 1, 0) != 0)
        {
            return false;
        }

        _ = SendDemandNowAsync(maxTarget, LeaseFor(maxDeadline, now), now);
        return true;
    }

    private async Task SendDemandNowAsync(Lsn until, TimeSpan lease, long now)
    {
        try
        {
            Interlocked.Increment(ref _calls);
            ReplayViewState state = await Tracker.WatchReplay(_reference, until, lease).WaitAsync(_options.CallTimeout, _time, _stop.Token).ConfigureAwait(false);
            RecordDemand(until, lease, now);
            Volatile.Write(ref _renewAt, now + (long)(_options.RenewalPeriod.TotalSeconds * _time.TimestampFrequency));
            Apply(state, pushed: false);
        }
#pragma warning disable CA1031 // The loop takes over: it sees the demand lapsed, calls again (with backoff) and handles the failure.
        catch (Exception)
#pragma warning restore CA1031
        {
            _failing = true;
        }
        finally
        {
            Volatile.Write(ref _callGate, 0);
            Signal();
        }
    }

    private void RecordDemand(Lsn until, TimeSpan lease, long now)
    {
        Volatile.Write(ref _demandUntil, until.Value);
        Volatile.Write(ref _demandLeaseEnd, now + (long)(lease.TotalSeconds * _time.TimestampFrequency));

        // Staleness counts from here: the tracker now knows what the view needs.
        Volatile.Write(ref _staleSince, now);
    }

    private void Signal()
    {
        if (_signal.CurrentCount != 0)
        {
            return;
        }

        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Someone else woke the loop first.
        }
    }

    /// <summary>A state from the tracker (a push, or the answer to a call): applied if newer than what the view holds.</summary>
    private void Apply(ReplayViewState state, bool pushed)
    {
        long now = _time.GetTimestamp();
        Volatile.Write(ref _lastHeard, now);
        if (pushed)
        {
            Interlocked.Increment(ref _pushes);
            Volatile.Write(ref _lastPush, now);
        }

        Waiter? released;
        Snapshot previous;
        Snapshot next;
        lock (_lock)
        {
            previous = _snapshot;
            if (_retired || !string.Equals(state.Region, Region, StringComparison.Ordinal) ||
                (state.Epoch == previous.Epoch && state.Version <= previous.Version))
            {
                return;
            }

            next = new Snapshot(state);
            _snapshot = next;
            released = next.IsPrimary ? _index.ReleaseAll() : next.Replay is Lsn replay ? _index.ReleaseUpTo(replay) : null;
        }

        if (!next.IsPrimary && !previous.IsPrimary && previous.Replay is Lsn before && (next.Replay is not Lsn after || after < before))
        {
            Log.WentBack(_logger, Region, next.Replay?.ToString() ?? "unknown", before);
        }

        CompleteAll(released, next.ReadyResult, "ready");
    }

    /// <summary>Releases the waits an answer of <see cref="ILsnTrackerGrain.RequestAndAwait"/> covers (the view's position is only ever set by states).</summary>
    private void ReleasePulled(Lsn replay)
    {
        Waiter? released;
        lock (_lock)
        {
            released = _index.ReleaseUpTo(replay);
        }

        CompleteAll(released, new LsnWaitResult(LsnWaitOutcome.Ready, replay), "ready");
    }

    private void FailPending(RegionUnavailableException error)
    {
        Waiter? failed;
        lock (_lock)
        {
            failed = _index.ReleaseAll();
        }

        int count = 0;
        while (failed is not null)
        {
            Waiter next = failed.Right!;
            failed.Right = null;
            ((AsyncWaiter)failed).CompleteFailed(Copy(error));
            count++;
            failed = next;
        }

        if (count > 0)
        {
            ClientMetrics.ViewWaits.Add(count, ClientMetrics.Tag(_tags, "orleanslsn.outcome", "region_unavailable"));
        }
    }

    /// <summary>A fresh exception per waiter: one instance thrown from many awaits at once would share a stack trace.</summary>
    private static RegionUnavailableException Copy(RegionUnavailableException error) =>
        error.Region.Length > 0 ? new RegionUnavailableException(error.Region, error.AvailableRegions) : new RegionUnavailableException(error.Message);

    private void OnExpiryTick()
    {
        Waiter? expired;
        lock (_lock)
        {
            long nowTick = (_time.GetTimestamp() - _origin) / _timestampsPerTick;
            expired = _index.ExpireUpTo(nowTick);
            if (_index.Count == 0 && _expiryTimerRunning)
            {
                _expiryTimerRunning = false;
                _expiryTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        CompleteAll(expired, new LsnWaitResult(LsnWaitOutcome.TimedOut, _snapshot.Replay), "timed_out");
    }

    private void CompleteAll(Waiter? head, LsnWaitResult result, string outcome)
    {
        int count = 0;
        while (head is not null)
        {
            Waiter next = head.Right!;
            head.Right = null;
            head.Complete(result);
            count++;
            head = next;
        }

        if (count > 0)
        {
            ClientMetrics.ViewWaits.Add(count, ClientMetrics.Tag(_tags, "orleanslsn.outcome", outcome));
        }
    }

    private (int Count, Lsn MaxTarget, long MaxDeadline) Pending()
    {
        lock (_lock)
        {
            return (_index.Count, _maxTarget, _maxDeadline);
        }
    }

    /// <summary>
    /// The view's one loop: registers and renews, sends demand when a wait needs more than the demand in force, notices
    /// when pushes stop, and retires the view once nobody used it for <see cref="ReplayViewOptions.IdleLifetime"/>.
    /// </summary>
    private async Task RunAsync()
    {
        await Task.Yield();
        CancellationToken stop = _stop.Token;
        TimeSpan backoff = _options.RetryInitialDelay;
        int failures = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                long now = _time.GetTimestamp();
                (int pending, Lsn maxTarget, long maxDeadline) = Pending();
                if (pending == 0 && _time.GetElapsedTime(Volatile.Read(ref _lastUsed), now) >= _options.IdleLifetime && TryRetire())
                {
                    break;
                }

                bool demandLapsed = pending > 0 && (maxTarget.Value > Volatile.Read(ref _demandUntil) || now >= Volatile.Read(ref _demandLeaseEnd));
                long staleReference = Math.Max(Volatile.Read(ref _lastPush), Volatile.Read(ref _staleSince));
                bool stale = pending > 0 && _time.GetElapsedTime(staleReference, now) >= _options.StaleAfter;
                if ((demandLapsed || stale || now >= Volatile.Read(ref _renewAt)) && Interlocked.CompareExchange(ref _callGate, 1, 0) != 0)
                {
                    // A waiting thread's call is in flight; its end signals the loop.
                    await WaitForSignalAsync(_options.CallTimeout, stop).ConfigureAwait(false);
                    continue;
                }

                if (demandLapsed || stale || now >= Volatile.Read(ref _renewAt))
                {
                    Lsn? until = pending > 0 ? maxTarget : null;
                    TimeSpan lease = LeaseFor(maxDeadline, now);
                    try
                    {
                        Interlocked.Increment(ref _calls);
                        ReplayViewState state;
                        try
                        {
                            state = await Tracker.WatchReplay(_reference, until, until is null ? null : lease)
                                .WaitAsync(_options.CallTimeout, _time, stop).ConfigureAwait(false);
                        }
                        finally
                        {
                            Volatile.Write(ref _callGate, 0);
                        }

                        if (until is Lsn sent)
                        {
                            RecordDemand(sent, lease, now);
                        }
                        else if (stale)
                        {
                            Volatile.Write(ref _staleSince, now);
                        }

                        _regionError = null;
                        _failing = false;
                        Apply(state, pushed: false);
                        if (failures > 0)
                        {
                            Log.Recovered(_logger, Region, failures);
                        }

                        Volatile.Write(ref _renewAt, now + (long)(_options.RenewalPeriod.TotalSeconds * _time.TimestampFrequency));
                        failures = 0;
                        backoff = _options.RetryInitialDelay;
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        break;
                    }
#pragma warning disable CA1031 // Whatever a call to the tracker throws, the view must survive and try again.
                    catch (Exception e)
#pragma warning restore CA1031
                    {
                        failures++;
                        _failing = true;
                        Volatile.Write(ref _renewAt, 0);
                        Log.CallFailed(_logger, Region, failures, backoff.TotalMilliseconds, e.GetType().Name, e.Message);
                        if (e is RegionUnavailableException unavailable)
                        {
                            _regionError = unavailable;
                            FailPending(unavailable);
                        }
                        else if (pending > 0)
                        {
                            EnsurePull();
                        }

                        // Not cut short by new waits: during an outage the view calls at the backoff's pace, whatever the load.
                        await Task.Delay(backoff, _time, stop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                        backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.RetryMaxDelay.Ticks));
                        continue;
                    }

                    if (stale)
                    {
                        EnsurePull();
                    }
                }

                await WaitForSignalAsync(NextWake(pending, Volatile.Read(ref _renewAt)), stop).ConfigureAwait(false);
            }

            try
            {
                await Tracker.UnwatchReplay(_reference).WaitAsync(_options.CallTimeout, _time).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Best effort: the tracker forgets a registration that is not renewed.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Log.UnwatchFailed(_logger, Region, e.GetType().Name, e.Message);
            }

            Task? pull;
            lock (_lock)
            {
                pull = _pull;
            }

            if (pull is not null)
            {
                await pull.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            DeleteReference();
            await _expiryTimer.DisposeAsync().ConfigureAwait(false);
            Log.Stopped(_logger, Region);
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    private async Task WaitForSignalAsync(TimeSpan timeout, CancellationToken stop)
    {
        try
        {
            await _signal.WaitAsync(timeout, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopping: the loop sees it.
        }
    }

    private TimeSpan NextWake(int pending, long renewAt)
    {
        long now = _time.GetTimestamp();
        TimeSpan wake;
        if (pending > 0)
        {
            long staleReference = Math.Max(Volatile.Read(ref _lastPush), Volatile.Read(ref _staleSince));
            TimeSpan untilStale = _options.StaleAfter - _time.GetElapsedTime(staleReference, now);
            TimeSpan untilLeaseEnd = _time.GetElapsedTime(now, Volatile.Read(ref _demandLeaseEnd));
            wake = untilStale < untilLeaseEnd ? untilStale : untilLeaseEnd;
        }
        else
        {
            TimeSpan untilRenewal = _time.GetElapsedTime(now, renewAt);
            TimeSpan untilIdle = _options.IdleLifetime - _time.GetElapsedTime(Volatile.Read(ref _lastUsed), now);
            wake = untilRenewal < untilIdle ? untilRenewal : untilIdle;
        }

        return wake < TickDuration ? TickDuration : wake;
    }

    private TimeSpan LeaseFor(long maxDeadline, long now)
    {
        TimeSpan lease = _time.GetElapsedTime(now, maxDeadline);
        return lease < MinimumLease ? MinimumLease : lease > MaxWaitTimeout ? MaxWaitTimeout : lease;
    }

    private bool TryRetire()
    {
        lock (_lock)
        {
            if (_index.Count > 0)
            {
                return false;
            }

            _retired = true;
        }

        _owner.Remove(this);
        Log.Retired(_logger, Region, _options.IdleLifetime.TotalSeconds);
        return true;
    }

    private void EnsurePull()
    {
        lock (_lock)
        {
            if (_retired || _index.Count == 0 || _pull is { IsCompleted: false })
            {
                return;
            }

            _pull = PullAsync(_time.GetTimestamp());
        }
    }

    /// <summary>
    /// While pushes are missing: one <see cref="ILsnTrackerGrain.RequestAndAwait"/> at a time for the lowest pending wait,
    /// until a push arrives after <paramref name="since"/> or no wait is left.
    /// </summary>
    private async Task PullAsync(long since)
    {
        await Task.Yield();
        CancellationToken stop = _stop.Token;
        TimeSpan backoff = _options.RetryInitialDelay;
        Log.Pulling(_logger, Region);
        while (!stop.IsCancellationRequested && Volatile.Read(ref _lastPush) < since)
        {
            Lsn target;
            TimeSpan timeout;
            lock (_lock)
            {
                if (_index.Min() is not { } lowest)
                {
                    return;
                }

                target = lowest.Target;
                long deadline = _origin + (lowest.DeadlineTick * _timestampsPerTick);
                timeout = _time.GetElapsedTime(_time.GetTimestamp(), deadline);
            }

            timeout = timeout < TickDuration ? TickDuration : timeout > MaxWaitTimeout ? MaxWaitTimeout : timeout;
            try
            {
                Interlocked.Increment(ref _pulls);
                using var deadline = new CancellationTokenSource(timeout + _options.CallTimeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, deadline.Token);
                LsnWaitResult result = await Tracker.RequestAndAwait(target, timeout, linked.Token).ConfigureAwait(false);
                if (result.IsReady)
                {
                    ReleasePulled(result.ReplayLsn is Lsn replay && replay >= target ? replay : target);
                }

                backoff = _options.RetryInitialDelay;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // A failed pull is tried again (bounded by the waits' own deadlines); the loop re-registers meanwhile.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Log.PullFailed(_logger, Region, e.GetType().Name, e.Message);
                await Task.Delay(backoff, _time, stop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.RetryMaxDelay.Ticks));
            }
        }
    }

    private void DeleteReference()
    {
        try
        {
            _grains.DeleteObjectReference<IReplayViewObserver>(_reference);
        }
        catch (ObjectDisposedException)
        {
            // The client is gone, and its references with it.
        }
        catch (InvalidOperationException)
        {
            // Same: a stopped client refuses.
        }
    }

    /// <summary>What the tracker calls; holds the view strongly (Orleans holds observers weakly).</summary>
    private sealed class Relay(ReplayView view) : IReplayViewObserver
    {
        public Task OnReplayView(ReplayViewState state)
        {
            ArgumentNullException.ThrowIfNull(state);
            view.Apply(state, pushed: true);
            return Task.CompletedTask;
        }
    }

    /// <summary>An immutable state of the view.</summary>
    [DebuggerDisplay("Replay = {Replay}, IsPrimary = {IsPrimary}, Version = {Epoch}:{Version}")]
    private sealed class Snapshot
    {
        internal static readonly Snapshot Unknown = new(new ReplayViewState("", null, false, 0, 0));

        internal Snapshot(ReplayViewState state)
        {
            Replay = state.Replay;
            IsPrimary = state.IsPrimary;
            Epoch = state.Epoch;
            Version = state.Version;
            ReadyResult = new LsnWaitResult(LsnWaitOutcome.Ready, state.Replay);
        }

        internal Lsn? Replay { get; }

        internal bool IsPrimary { get; }

        internal long Epoch { get; }

        internal long Version { get; }

        /// <summary>Shared by every wait this state releases or answers at once, so neither allocates a result.</summary>
        internal LsnWaitResult ReadyResult { get; }

        internal bool Covers(Lsn lsn) => IsPrimary || (Replay is Lsn replay && replay >= lsn);
    }
}
