using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrleansLsn.Waiting;

namespace OrleansLsn.Tracking;

/// <summary>
/// Tracks how far one region's replica has replayed WAL and releases waiters once their LSN is replayed there: the
/// engine behind <see cref="ILsnTrackerGrain"/>, usable without any grain runtime.
/// <para>
/// It keeps exactly one connection to the replica whatever the number of waiters, and polls it adaptively: every
/// <see cref="LsnTrackerOptions.ActivePollInterval"/> while waiters are pending, slower while only subscribers listen,
/// rarely (or never) when idle. A waiter is registered before the cached replay LSN is checked, under one lock shared
/// with every advance, so no wake-up is lost. Waiters live in a <see cref="WaiterIndex"/>: an advance releases exactly
/// the waiters it satisfies, and a waiter that times out or is cancelled leaves the index at once.
/// </para>
/// <para>
/// If the watched server is a primary (<c>pg_is_in_recovery()</c> is false), every LSN counts as replicated. If it is
/// unreachable the tracker reports <see cref="TrackerHealthStatus.Degraded"/>, keeps timing waiters out on schedule,
/// reconnects with exponential backoff, and recovers by itself.
/// </para>
/// </summary>
public sealed partial class LsnTracker : IAsyncDisposable, IWaiterOwner
{
    /// <summary>The configuration key of <see cref="LsnTrackerOptions.MaxPendingWaiters"/> on a silo, named by the cap's error.</summary>
    internal const string MaxPendingWaitersKey = "OrleansLsn:Tracker:MaxPendingWaiters";

    private static readonly TimeSpan TickDuration = TimeSpan.FromMilliseconds(1);
    private static readonly LsnTrackerOptionsValidator Validator = new();

    private readonly Lock _lock = new();
    private readonly LsnTrackerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly WaiterIndex _index;
    private readonly long _origin;
    private readonly long _timestampsPerTick;
    private readonly ITimer _expiryTimer;
    private readonly PostgresReplayReader? _reader;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TagList _tags;

    // Guarded by _lock.
    private bool _expiryTimerRunning;
    private LsnReplaySubscription[] _subscribers = [];
    private TaskCompletionSource? _refresh;
    private bool _disposed;
    private long _version;

    // Replaced (never mutated) under _lock; read without it.
    private volatile ReplaySnapshot _snapshot = ReplaySnapshot.Unknown;
    private volatile TrackerHealth _health;
    private Thread? _watchThread;
    private readonly TaskCompletionSource _watchStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _followTimestamps;

    // Until when the watch loop polls back to back (a timestamp); written by every new waiter, read by the loop.
    private long _followUntil;

    /// <summary>Creates a tracker for <paramref name="region"/>. Call <see cref="Start"/> to begin watching the replica.</summary>
    /// <exception cref="ArgumentException">The region is empty.</exception>
    /// <exception cref="OptionsValidationException">The options are invalid; the message lists every problem.</exception>
    public LsnTracker(string region, LsnTrackerOptions options, ILogger<LsnTracker>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(region);
        ArgumentNullException.ThrowIfNull(options);
        ValidateOptionsResult validation = Validator.Validate(null, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(nameof(LsnTrackerOptions), typeof(LsnTrackerOptions), validation.Failures);
        }

        Region = region;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _origin = _time.GetTimestamp();
        _timestampsPerTick = Math.Max(1, (long)(_time.TimestampFrequency * TickDuration.TotalSeconds));
        _index = new WaiterIndex(startTick: 0);
        _expiryTimer = _time.CreateTimer(static s => ((LsnTracker)s!).OnExpiryTick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _reader = options.ReplicaConnectionString is null ? null : new PostgresReplayReader(options.ReplicaConnectionString, region, options.QueryTimeout);
        // A push-only tracker has no replica that could fail, so it is healthy from the start.
        _health = new TrackerHealth(_reader is null ? TrackerHealthStatus.Healthy : TrackerHealthStatus.Starting, null, _time.GetUtcNow(), 0);
        _tags = new TagList { { "orleanslsn.region", region } };
        _followTimestamps = (long)(options.FollowWindow.TotalSeconds * _time.TimestampFrequency);
    }

    /// <summary>The region whose replica this tracker watches.</summary>
    public string Region { get; }

    /// <summary>The latest replay LSN seen (cached, never a query); <see langword="null"/> before the first successful poll or push.</summary>
    public Lsn? LastReplay => _snapshot.Replay;

    /// <summary>Whether the watched server is a primary, so that every LSN counts as replicated.</summary>
    public bool IsPrimary => _snapshot.IsPrimary;

    /// <summary>
    /// What the tracker knows, read at once (one immutable snapshot): the replay position, whether the server is a primary,
    /// and a version that grows with every change, including a move back after the replica was replaced.
    /// </summary>
    public (Lsn? Replay, bool IsPrimary, long Version) Current
    {
        get
        {
            ReplaySnapshot snapshot = _snapshot;
            return (snapshot.Replay, snapshot.IsPrimary, snapshot.Version);
        }
    }

    /// <summary>Healthy, or degraded with the last error.</summary>
    public TrackerHealth Health => _health;

    /// <summary>Waiters currently registered (awaits and notifications).</summary>
    public int PendingWaiters
    {
        get
        {
            lock (_lock)
            {
                return _index.Count;
            }
        }
    }

    /// <summary>Starts watching the replica (no-op for a push-only tracker, or when already started).</summary>
    public void Start()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_reader is null || _watchThread is not null)
            {
                return;
            }

            // A thread of its own: the loop sleeps between polls with a blocking high-resolution wait, since async
            // timers follow the coarse system tick (4 ms on many Linux kernels) and would turn 1 ms into 4.
            _watchThread = new Thread(WatchLoop) { IsBackground = true, Name = $"LsnTracker {Region}" };
            _watchThread.UnsafeStart();   // no execution context: the loop is no caller's, nor in any caller's trace
        }

        Log.Started(_logger, Region, _reader.Endpoint);
    }

    /// <summary>Whether the cached replay LSN has reached <paramref name="lsn"/> (always true for a primary). Never queries.</summary>
    public bool IsReplicated(Lsn lsn) => _snapshot.Covers(lsn);

    /// <summary>
    /// Like <see cref="IsReplicated"/>, but when the cache says no it waits for one fresh poll of the replica (shared
    /// with concurrent callers) before answering. While the replica is unreachable it answers from the cache.
    /// </summary>
    public async ValueTask<bool> IsReplicatedAsync(Lsn lsn, CancellationToken cancellationToken = default)
    {
        if (_snapshot.Covers(lsn))
        {
            return true;
        }

        await RefreshAsync(cancellationToken).ConfigureAwait(false);
        return _snapshot.Covers(lsn);
    }

    /// <summary>
    /// Waits for one poll of the replica that starts after this call (at most <see cref="LsnTrackerOptions.QueryTimeout"/>
    /// plus the backoff in force). Returns at once for a push-only tracker.
    /// </summary>
    public async Task RefreshAsync(CancellationToken cancellationToken = default)
    {
        if (_reader is null)
        {
            return;
        }

        Task pending;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _refresh ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            pending = _refresh.Task;
        }

        Wake();
        await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Registers a wait for <paramref name="lsn"/> and awaits it: <see cref="LsnWaitOutcome.Ready"/> once the replica has
    /// replayed it, <see cref="LsnWaitOutcome.TimedOut"/> when <paramref name="timeout"/> elapses first (never before).
    /// Returns synchronously when the cache already covers it.
    /// </summary>
    /// <param name="lsn">The LSN to wait for, typically from <c>OrleansLsn.Client.PrimaryLsn.GetCurrentInsertLsnAsync</c> after the commit.</param>
    /// <param name="timeout">Default <see cref="LsnTrackerOptions.DefaultWaitTimeout"/> (3 s); must be positive and at most
    /// <see cref="LsnTrackerOptions.MaxWaitTimeout"/>.</param>
    /// <param name="cancellationToken">Cancels the wait: it leaves the index at once and the task throws <see cref="OperationCanceledException"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is not positive or exceeds the maximum.</exception>
    /// <exception cref="LimitExceededException">The tracker already holds <see cref="LsnTrackerOptions.MaxPendingWaiters"/> waiters.</exception>
    public ValueTask<LsnWaitResult> RequestAndAwaitAsync(Lsn lsn, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ValueTask<LsnWaitResult> wait = WaitOrRefuse(lsn, timeout, cancellationToken, out Exception? refusal);
        return refusal is null ? wait : throw refusal;
    }

    /// <summary>
    /// <see cref="RequestAndAwaitAsync"/> without throwing: a refused wait (timeout out of range, the waiter cap) returns
    /// the default task and the exception, created but never thrown, in <paramref name="refusal"/>. The tracker grain
    /// hands it to Orleans as a faulted task: an exception that was never thrown carries no stack trace, and Orleans
    /// formats and sends the stack trace of every exception it returns, which made each refusal cost about 0.5 ms of
    /// silo CPU (30 000 refusals took 10 to 25 s on this machine), the most expensive part of a flood.
    /// </summary>
    internal ValueTask<LsnWaitResult> WaitOrRefuse(Lsn lsn, TimeSpan? timeout, CancellationToken cancellationToken, out Exception? refusal)
    {
        refusal = CheckTimeout(timeout, out long timeoutTimestamps);
        if (refusal is not null)
        {
            return default;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<LsnWaitResult>(cancellationToken);
        }

        ReplaySnapshot snapshot = _snapshot;
        if (snapshot.Covers(lsn))
        {
            return new ValueTask<LsnWaitResult>(snapshot.ReadyResult);
        }

        long now = _time.GetTimestamp();
        var waiter = new AsyncWaiter(this, lsn, now);
        if (TryAdd(waiter, now, timeoutTimestamps, out refusal) is { } ready)
        {
            return new ValueTask<LsnWaitResult>(ready);
        }

        if (refusal is not null)
        {
            return default;
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

            // Already released, timed out or cancelled: the registration is not needed.
            registration.Unregister();
        }

        return waiter.AsValueTask();
    }

    /// <summary>
    /// Calls <paramref name="callback"/> once, on the thread pool: with <see cref="LsnWaitOutcome.Ready"/> when the replica
    /// has replayed <paramref name="lsn"/> (at once if it already has), or <see cref="LsnWaitOutcome.TimedOut"/> after
    /// <paramref name="timeout"/>. Dispose the result to withdraw the request without a call. Exceptions from the
    /// callback are logged, never thrown into the tracker.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="callback"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is not positive or exceeds the maximum.</exception>
    /// <exception cref="LimitExceededException">The tracker already holds <see cref="LsnTrackerOptions.MaxPendingWaiters"/> waiters.</exception>
    public IDisposable RequestNotification(Lsn lsn, Action<LsnWaitResult> callback, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(callback);
        long timeoutTimestamps = ValidateTimeout(timeout);
        long now = _time.GetTimestamp();
        var waiter = new CallbackWaiter(this, lsn, now, callback);
        if (TryAdd(waiter, now, timeoutTimestamps, out Exception? refusal) is { } ready)
        {
            waiter.Complete(ready);
        }
        else if (refusal is not null)
        {
            throw refusal;
        }

        return waiter;
    }

    /// <summary>
    /// Subscribes to every advance of the replay LSN. The current value (if any) is delivered first; after that the newest
    /// value wins and a slow reader never builds a queue.
    /// </summary>
    public LsnReplaySubscription SubscribeReplay()
    {
        var subscription = new LsnReplaySubscription(this);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _subscribers = [.. _subscribers, subscription];
            if (_snapshot.Replay is Lsn current)
            {
                subscription.Publish(current);
            }
        }

        Wake();
        return subscription;
    }

    /// <summary>The replay LSN on every advance, newest wins (see <see cref="SubscribeReplay"/>), until cancelled or stopped.</summary>
    public async IAsyncEnumerable<Lsn> WatchReplayAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using LsnReplaySubscription subscription = SubscribeReplay();
        while (await subscription.Updates.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (subscription.Updates.TryRead(out Lsn lsn))
            {
                yield return lsn;
            }
        }
    }

    /// <summary>
    /// Accepts a replay position learned elsewhere (for example from the replication pump, or a replica that pushes its
    /// progress). Positions only move forward here; the value must be one the region's replica has really replayed.
    /// </summary>
    public void ReportReplay(Lsn replay)
    {
        Waiter? released;
        ReplaySnapshot next;
        lock (_lock)
        {
            ReplaySnapshot current = _snapshot;
            if (_disposed || current.IsPrimary || (current.Replay is Lsn known && replay <= known))
            {
                return;
            }

            next = new ReplaySnapshot(false, replay, ++_version);
            _snapshot = next;
            released = _index.ReleaseUpTo(replay);
            PublishLocked(replay);
        }

        CompleteAll(released, next.ReadyResult, "ready");
    }

    /// <summary>Stops watching, times out every pending waiter and completes every subscription.</summary>
    public async ValueTask DisposeAsync()
    {
        bool started;
        Waiter? pending;
        LsnReplaySubscription[] subscribers;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            started = _watchThread is not null;
            pending = _index.ReleaseAll();
            subscribers = _subscribers;
            _subscribers = [];
            _refresh?.TrySetResult();
            _refresh = null;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (started)
        {
            await _watchStopped.Task.ConfigureAwait(false);
        }

        await _expiryTimer.DisposeAsync().ConfigureAwait(false);
        CompleteAll(pending, new LsnWaitResult(LsnWaitOutcome.TimedOut, _snapshot.Replay), "timed_out");
        foreach (LsnReplaySubscription subscription in subscribers)
        {
            subscription.Complete();
        }


        _health = new TrackerHealth(TrackerHealthStatus.Stopped, null, _time.GetUtcNow(), 0);
        _stopping.Dispose();
        _wake.Dispose();
        Log.Stopped(_logger, Region);
    }

    internal void Unsubscribe(LsnReplaySubscription subscription)
    {
        lock (_lock)
        {
            int i = Array.IndexOf(_subscribers, subscription);
            if (i >= 0)
            {
                _subscribers = [.. _subscribers[..i], .. _subscribers[(i + 1)..]];
            }
        }
    }

    /// <summary>Withdraws a notification request without calling it back.</summary>
    internal void Withdraw(Waiter waiter)
    {
        lock (_lock)
        {
            if (!_index.Remove(waiter))
            {
                return;
            }
        }

        TrackerMetrics.PendingWaiters.Add(-1, _tags);
        RecordFinished(1, "cancelled");
    }

    internal void OnCallbackFailed(Exception exception) => Log.CallbackFailed(_logger, Region, exception);

    void IWaiterOwner.Cancel(AsyncWaiter waiter, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_index.Remove(waiter))
            {
                return;
            }
        }

        TrackerMetrics.PendingWaiters.Add(-1, _tags);
        RecordFinished(1, "cancelled");
        waiter.CompleteCanceled(cancellationToken);
    }

    /// <summary>Adds the waiter unless the replay LSN already covers it; then returns the ready result instead.</summary>
    private LsnWaitResult? TryAdd(Waiter waiter, long now, long timeoutTimestamps, out Exception? refusal)
    {
        refusal = null;
        bool firstWaiter;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ReplaySnapshot snapshot = _snapshot;
            if (snapshot.Covers(waiter.Target))
            {
                return snapshot.ReadyResult;
            }

            if (_index.Count >= _options.MaxPendingWaiters)
            {
                TrackerMetrics.WaitsRejected.Add(1, _tags);
                refusal = new LimitExceededException(MaxPendingWaitersKey, _options.MaxPendingWaiters, $"The tracker of region '{Region}'", "pending waiters");
                return null;
            }

            long nowTick = (now - _origin) / _timestampsPerTick;
            if (_index.Count == 0)
            {
                // Nothing is pending, so no slot needs visiting between the last expiry pass and now.
                _index.ResetClock(nowTick);
            }

            // Round the deadline up to a whole tick: the wheel then never fires before the timeout has elapsed.
            long deadlineTick = (now - _origin + timeoutTimestamps + _timestampsPerTick - 1) / _timestampsPerTick;
            _index.Add(waiter, deadlineTick);
            firstWaiter = _index.Count == 1;
            if (!_expiryTimerRunning)
            {
                _expiryTimerRunning = true;
                _expiryTimer.Change(TickDuration, TickDuration);
            }
        }

        TrackerMetrics.PendingWaiters.Add(1, _tags);
        bool following = Volatile.Read(ref _followUntil) > now;
        Volatile.Write(ref _followUntil, now + _followTimestamps);
        if (firstWaiter || !following)
        {
            // Poll now rather than at the end of the current sleep: the waiter's commit is probably being replayed.
            Wake();
        }

        return null;
    }

    private void OnExpiryTick()
    {
        Waiter? expired;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            long nowTick = (_time.GetTimestamp() - _origin) / _timestampsPerTick;
            expired = _index.ExpireUpTo(nowTick);
            if (_index.Count == 0 && _expiryTimerRunning)
            {
                _expiryTimerRunning = false;
                _expiryTimer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        if (expired is not null)
        {
            CompleteAll(expired, new LsnWaitResult(LsnWaitOutcome.TimedOut, _snapshot.Replay), "timed_out");
        }
    }

    private void WatchLoop()
    {
        try
        {
            WatchLoopCore(_stopping.Token);
        }
        finally
        {
            _watchStopped.TrySetResult();
        }
    }

    private void WatchLoopCore(CancellationToken stopping)
    {
        Debug.Assert(_reader is not null, "only a tracker with a replica runs the watch loop");
        int failures = 0;
        TimeSpan backoff = _options.ReconnectInitialDelay;
        // Shutdown interrupts a blocking poll by closing its connection.
        using CancellationTokenRegistration abort = stopping.UnsafeRegister(static s => ((PostgresReplayReader)s!).Abort(), _reader);
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                TaskCompletionSource? refresh;
                lock (_lock)
                {
                    refresh = _refresh;
                    _refresh = null;
                }

                bool reconnecting = !_reader.IsOpen;
                try
                {
                    ReplayPosition position = _reader.Read();
                    TrackerMetrics.Polls.Add(1, _tags);
                    Apply(position, reconnecting);
                    if (_health.Status != TrackerHealthStatus.Healthy)
                    {
                        _health = new TrackerHealth(TrackerHealthStatus.Healthy, null, _time.GetUtcNow(), 0);
                        Log.Healthy(_logger, Region, position.Lsn?.ToString() ?? "none", failures);
                    }

                    failures = 0;
                    backoff = _options.ReconnectInitialDelay;
                    refresh?.TrySetResult();
                }
#pragma warning disable CA1031 // Whatever the replica or driver throws, the tracker must survive and retry.
                catch (Exception ex) when (!stopping.IsCancellationRequested)
#pragma warning restore CA1031
                {
                    failures++;
                    TrackerMetrics.PollErrors.Add(1, _tags);
                    TrackerMetrics.Polls.Add(1, _tags);
                    _reader.Reset();
                    refresh?.TrySetResult();

                    TimeSpan delay = Jitter(backoff);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.ReconnectMaxDelay.Ticks));
                    string error = Describe(ex);
                    bool wasDegraded = _health.Status == TrackerHealthStatus.Degraded;
                    _health = new TrackerHealth(
                        TrackerHealthStatus.Degraded, error, wasDegraded ? _health.Since : _time.GetUtcNow(), failures);
                    if (wasDegraded)
                    {
                        Log.PollFailed(_logger, Region, failures, (long)delay.TotalMilliseconds, error);
                    }
                    else
                    {
                        Log.Degraded(_logger, Region, (long)delay.TotalMilliseconds, error);
                    }

                    if (stopping.WaitHandle.WaitOne(delay))
                    {
                        break;
                    }

                    continue;
                }
                catch (Exception) when (stopping.IsCancellationRequested)
                {
                    break;
                }

                try
                {
                    WaitForNextPoll(stopping);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        finally
        {
            _reader.Reset();
        }
    }

    private void WaitForNextPoll(CancellationToken stopping)
    {
        TimeSpan interval;
        lock (_lock)
        {
            if (_refresh is not null)
            {
                return;
            }

            interval = _index.Count > 0
                ? (Volatile.Read(ref _followUntil) > _time.GetTimestamp() ? TimeSpan.Zero : _options.ActivePollInterval)
                : _subscribers.Length > 0 ? _options.WatchPollInterval
                : _options.IdlePollInterval;
        }

        if (interval == TimeSpan.Zero)
        {
            return;
        }

        // A blocking wait: the OS wakes it within about 0.1 ms of the interval, unlike the 4 ms tick of async timers.
        _wake.Wait(interval, stopping);
    }

    private void Apply(ReplayPosition position, bool afterReconnect)
    {
        Waiter? released = null;
        ReplaySnapshot next;
        ReplaySnapshot previous;
        lock (_lock)
        {
            previous = _snapshot;
            if (position.IsPrimary)
            {
                next = previous.IsPrimary && previous.Replay == position.Lsn ? previous : new ReplaySnapshot(true, position.Lsn, ++_version);
                released = _index.ReleaseAll();
            }
            else if (position.Lsn is Lsn replay)
            {
                // Only a fresh connection may move the position back: the replica restarted or was replaced, and what
                // it shows now is what a reader will see.
                bool advance = previous.IsPrimary || previous.Replay is not Lsn known || replay > known ||
                    (afterReconnect && replay < known);
                if (!advance)
                {
                    return;
                }

                next = new ReplaySnapshot(false, replay, ++_version);
                released = _index.ReleaseUpTo(replay);
            }
            else
            {
                if (!previous.IsPrimary && !afterReconnect)
                {
                    return;
                }

                next = previous.Replay is null && !previous.IsPrimary ? previous : new ReplaySnapshot(false, null, ++_version);
            }

            _snapshot = next;
            if (next.Replay is Lsn published && published != previous.Replay)
            {
                PublishLocked(published);
            }
        }

        if (next.IsPrimary && !previous.IsPrimary)
        {
            Log.PrimaryDetected(_logger, Region, _reader!.Endpoint);
        }
        else if (!next.IsPrimary && next.Replay < previous.Replay && !previous.IsPrimary)
        {
            Log.ReplayWentBack(_logger, Region, next.Replay?.ToString() ?? "none", previous.Replay?.ToString() ?? "none");
        }

        CompleteAll(released, next.ReadyResult, "ready");
    }

    private void PublishLocked(Lsn replay)
    {
        foreach (LsnReplaySubscription subscription in _subscribers)
        {
            subscription.Publish(replay);
        }
    }

    private void CompleteAll(Waiter? head, LsnWaitResult result, string outcome)
    {
        if (head is null)
        {
            return;
        }

        long now = TrackerMetrics.WaitDuration.Enabled ? _time.GetTimestamp() : 0;
        int count = 0;
        while (head is not null)
        {
            Waiter next = head.Right!;
            head.Right = null;
            if (now != 0)
            {
                TrackerMetrics.WaitDuration.Record(_time.GetElapsedTime(head.StartTimestamp, now).TotalSeconds, _tags);
            }

            head.Complete(result);
            count++;
            head = next;
        }

        TrackerMetrics.PendingWaiters.Add(-count, _tags);
        RecordFinished(count, outcome);
    }

    private void RecordFinished(int count, string outcome)
    {
        if (TrackerMetrics.Waits.Enabled)
        {
            TagList tags = _tags;
            tags.Add("orleanslsn.outcome", outcome);
            TrackerMetrics.Waits.Add(count, tags);
        }
    }

    private long ValidateTimeout(TimeSpan? timeout) =>
        CheckTimeout(timeout, out long timestamps) is { } refusal ? throw refusal : timestamps;

    private ArgumentOutOfRangeException? CheckTimeout(TimeSpan? timeout, out long timestamps)
    {
        TimeSpan value = timeout ?? _options.DefaultWaitTimeout;
        if (value <= TimeSpan.Zero || value > _options.MaxWaitTimeout)
        {
            timestamps = 0;
            return new ArgumentOutOfRangeException(
                nameof(timeout), value, $"The wait timeout must be positive and at most {_options.MaxWaitTimeout} (LsnTrackerOptions.MaxWaitTimeout).");
        }

        timestamps = (long)(value.TotalSeconds * _time.TimestampFrequency);
        return null;
    }

    private void Wake()
    {
        if (_wake.CurrentCount != 0)
        {
            return;
        }

        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Another caller woke the loop first.
        }
        catch (ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private static TimeSpan Jitter(TimeSpan delay) =>
        TimeSpan.FromTicks((long)(delay.Ticks * (0.8 + (Random.Shared.NextDouble() * 0.4))));

    private string Describe(Exception ex)
    {
        if (ex is Npgsql.NpgsqlException { InnerException: TimeoutException } or TimeoutException)
        {
            return $"the replica did not answer within the query timeout ({_options.QueryTimeout.TotalSeconds:0.###} s, rounded up to whole seconds)";
        }

        // Npgsql 10.0.0 can surface a connection the server dropped as a NullReferenceException from its reader.
        string kind = ex is NullReferenceException ? "connection lost (NullReferenceException from the driver)" : ex.GetType().Name;
        return $"{kind}: {ex.Message}";
    }

    /// <summary>An immutable view of what the tracker knows about its replica.</summary>
    private sealed class ReplaySnapshot
    {
        internal static readonly ReplaySnapshot Unknown = new(false, null, 0);

        internal ReplaySnapshot(bool isPrimary, Lsn? replay, long version)
        {
            IsPrimary = isPrimary;
            Replay = replay;
            Version = version;
            ReadyResult = new LsnWaitResult(LsnWaitOutcome.Ready, replay);
        }

        internal bool IsPrimary { get; }

        internal Lsn? Replay { get; }

        /// <summary>Counts the changes of what the tracker knows (a new position, primary or not, unknown): higher is newer.</summary>
        internal long Version { get; }

        /// <summary>Shared by every waiter this snapshot releases, so a release allocates no result per waiter.</summary>
        internal LsnWaitResult ReadyResult { get; }

        internal bool Covers(Lsn lsn) => IsPrimary || (Replay is Lsn replay && replay >= lsn);
    }
}
