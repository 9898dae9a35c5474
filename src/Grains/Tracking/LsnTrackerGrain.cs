using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Serialization.Invocation;
using Orleans.Utilities;
using OrleansLsn.Hosting;
using OrleansLsn.Placement;

namespace OrleansLsn.Tracking;

/// <summary>
/// The tracker of one region (the key), a thin adapter over <see cref="LsnTracker"/>: it watches the replica configured
/// for this silo's region and only ever runs on a silo of that region (<see cref="RegionPlacementAttribute"/>).
/// <para>
/// Reentrant, so that a wait never holds the grain's turn: any number of <see cref="RequestAndAwait"/> calls are
/// pending at once, each only a waiter in the engine. Observers are pushed to one call in flight per observer, so a
/// slow or vanished one never delays the others, and each push is bounded by
/// <see cref="TrackerObserverOptions.PushTimeout"/>. The activation stays alive while it has subscribers or pending
/// notifications (running waits keep it alive anyway) and closes its replica connection when it deactivates.
/// </para>
/// </summary>
[RegionPlacement]
[Reentrant]
internal sealed partial class LsnTrackerGrain : Grain, ILsnTrackerGrain, IIncomingGrainCallFilter
{
    private const string MaxSubscribersKey = "OrleansLsn:Observers:MaxSubscribers";
    private const string MaxPendingWaitersPerClientKey = "OrleansLsn:Tracker:MaxPendingWaitersPerClient";

    private readonly OrleansLsnOptions _options;
    private readonly SiloEngines _engines;
    private readonly ILocalSiloDetails _silo;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly ObserverManager<ILsnObserver> _subscribers;
    private readonly Dictionary<GrainId, PushState> _pushes = new();
    private readonly HashSet<NotificationRequest> _notifications = new();
    private readonly HashSet<Task> _inFlight = new();
    private readonly CallerWaitCounts _callers = new();

    // The caller of the request being invoked: set by Invoke just before the method runs, read by it synchronously.
    private GrainId _caller;

    // A refusal the method being invoked decided synchronously, for Invoke to answer with (see Invoke and Refuse).
    private Exception? _refusal;
    private LsnTracker? _tracker;
    private LsnReplaySubscription? _replay;
    private TaskScheduler _scheduler = TaskScheduler.Default;
    private IGrainTimer? _housekeeping;
    private bool _keptAlive;
    private string _region = "";

    public LsnTrackerGrain(IOptions<OrleansLsnOptions> options, SiloEngines engines, ILocalSiloDetails silo, ILoggerFactory loggerFactory)
    {
        _options = options.Value;
        _engines = engines;
        _silo = silo;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<LsnTrackerGrain>();
        _subscribers = new ObserverManager<ILsnObserver>(_options.Observers.SubscriptionExpiry, _logger);
    }

    private LsnTracker Tracker => _engines.IsStopping
        ? throw new SiloUnavailableException($"Silo {_silo.SiloAddress} is shutting down; the tracker of region '{_region}' moves to another silo of the region. Retry the call.")
        : _tracker ?? throw new InvalidOperationException("The tracker is not active.");

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _region = this.GetPrimaryKeyString();
        if (!string.Equals(_region, _options.Region, StringComparison.Ordinal))
        {
            // Placement never does this; refuse rather than watch another region's replica.
            throw new InvalidOperationException($"The tracker of region '{_region}' cannot run on a silo of region '{_options.Region}'.");
        }

        _scheduler = TaskScheduler.Current;
        var engineOptions = CopyEngineOptions(_options.Tracker, _options.ReplicaConnectionString);
        var tracker = new LsnTracker(_region, engineOptions, _loggerFactory.CreateLogger<LsnTracker>());
        _engines.Add(tracker);
        tracker.Start();
        _tracker = tracker;
        TimeSpan period = TimeSpan.FromTicks(Math.Clamp(_options.Observers.SubscriptionExpiry.Ticks / 4, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(30).Ticks));
        _housekeeping = this.RegisterGrainTimer(Housekeep, new GrainTimerCreationOptions { DueTime = period, Period = period, Interleave = true, KeepAlive = false });
        Log.Activated(_logger, _region, _silo.SiloAddress);
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _housekeeping?.Dispose();
        _replay?.Dispose();
        _replay = null;
        EndViews();
        foreach (NotificationRequest request in _notifications)
        {
            request.Registration?.Dispose();
        }

        _notifications.Clear();
        _callers.Clear();

        if (_tracker is { } tracker)
        {
            _tracker = null;
            await _engines.RemoveAndDisposeAsync(tracker).ConfigureAwait(true);
        }

        // Pushes are bounded by the push timeout; wait for them so nothing outlives the activation.
        await Task.WhenAll(_inFlight).WaitAsync(_options.Observers.PushTimeout, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        Log.Deactivated(_logger, _region, reason.Description);
    }

    /// <summary>
    /// Notes who calls (a client or a grain), for the per-caller cap of pending waits; refuses a wait or a notification
    /// request from a caller at its cap before the method runs; and answers with the refusal a wait's method decided
    /// (<see cref="Refuse{T}"/>).
    /// <para>
    /// A refusal is set as the call's response, an exception created and never thrown. A faulted task returned by the
    /// method would be rethrown three times on its way through Orleans' invoker (by the invokable, by the invoker to
    /// show it to filters, and at the await of this filter), each throw capturing a stack trace that the response's
    /// serializer then formats. Under a flood from one client those throws were most of the activation's time (profile
    /// in docs/benchmarks.md), and every other caller's request waits behind them in the activation's inbox.
    /// </para>
    /// </summary>
    public Task Invoke(IIncomingGrainCallContext context)
    {
        GrainId caller = context.SourceId ?? default;
        _caller = caller;
        if (context.MethodName is nameof(RequestAndAwait) or nameof(RequestNotification) && CallerRefusal(caller) is { } atCap)
        {
            context.Response = Response.FromException(atCap);
            return Task.CompletedTask;
        }

        _refusal = null;
        Task invoked = context.Invoke();
        if (_refusal is { } refusal)
        {
            // Set by the method before it returned, so the invocation completed synchronously; the placeholder result it
            // returned is replaced by the refusal.
            _refusal = null;
            context.Response = Response.FromException(refusal);
        }

        return invoked;
    }

    /// <summary>
    /// Refuses the call being invoked without a throw: <see cref="Invoke"/> sets <paramref name="refusal"/> as its
    /// response in place of the placeholder returned here. Only from a method's synchronous part, called through Orleans.
    /// </summary>
    private Task<T> Refuse<T>(Exception refusal)
    {
        _refusal = refusal;
        return Task.FromResult<T>(default!);
    }

    public Task<Lsn?> GetLastReplay() => Task.FromResult(Tracker.LastReplay);

    public async Task<bool> IsReplicated(Lsn lsn)
    {
        ThrowIfInvalid(lsn);
        return await Tracker.IsReplicatedAsync(lsn).ConfigureAwait(true);
    }

    public Task<LsnWaitResult> RequestAndAwait(Lsn lsn, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        // Refusals (a bad argument, the engine's waiter cap) are never thrown (see Invoke); a caller at its own cap was
        // refused by Invoke, before this method.
        if (!lsn.IsValid)
        {
            return Refuse<LsnWaitResult>(InvalidLsn());
        }

        GrainId caller = _caller;
        ValueTask<LsnWaitResult> wait = Tracker.WaitOrRefuse(lsn, timeout, cancellationToken, out Exception? refusal);
        if (refusal is not null)
        {
            return Refuse<LsnWaitResult>(refusal);
        }

        if (wait.IsCompleted)
        {
            return CompleteWaitAsync(wait, lsn);
        }

        CountCaller(caller, 1);
        Activity? held = TrackerTracing.StartHeldWait(_region, lsn);
        return CompleteWaitAsync(new ValueTask<LsnWaitResult>(_callers.UncountWhenDoneAsync(wait, caller, _options.Tracker.MaxPendingWaitersPerClient)), lsn, held);
    }

    private async Task<LsnWaitResult> CompleteWaitAsync(ValueTask<LsnWaitResult> wait, Lsn lsn, Activity? held = null)
    {
        try
        {
            LsnWaitResult result = await wait.ConfigureAwait(true);
            if (result.Outcome == LsnWaitOutcome.TimedOut && _engines.IsStopping)
            {
                // The silo ended the wait, not its timeout: say so, so that the caller retries where the tracker moves.
                throw new SiloUnavailableException($"Silo {_silo.SiloAddress} is shutting down and ended the wait for {lsn} in region '{_region}'. Retry the call.");
            }

            if (held is not null)
            {
                TrackerTracing.Ended(held, result);
            }

            return result;
        }
        catch (Exception e) when (held is not null)
        {
            TrackerTracing.Failed(held, e);
            throw;
        }
        finally
        {
            held?.Dispose();
        }
    }

    /// <summary>The refusal for a caller already at its cap of pending waits (created, never thrown: see RequestAndAwait), else null.</summary>
    private LimitExceededException? CallerRefusal(GrainId caller)
    {
        int cap = _options.Tracker.MaxPendingWaitersPerClient;
        if (!_callers.AtCap(caller, cap, out bool firstRefusal))
        {
            return null;
        }

        TrackerMetrics.WaitsRejected.Add(1, new KeyValuePair<string, object?>("orleanslsn.region", _region));
        if (firstRefusal)
        {
            Log.CallerAtCap(_logger, _region, caller.IsDefault ? "(unknown)" : caller.ToString(), cap);
        }

        return new LimitExceededException(MaxPendingWaitersPerClientKey, cap, $"The tracker of region '{_region}'", "pending waits of one caller");
    }

    private void CountCaller(GrainId caller, int delta) => _callers.Add(caller, delta, _options.Tracker.MaxPendingWaitersPerClient);

    public Task RequestNotification(Lsn lsn, ILsnObserver observer)
    {
        ThrowIfInvalid(lsn);
        ArgumentNullException.ThrowIfNull(observer);
        GrainId caller = _caller;
        var request = new NotificationRequest(lsn, observer, caller);
        // Counted before the engine may call back (on the thread pool, where the count drops); a refusal there (the
        // waiter cap) takes the count back and leaves nothing behind here. OnNotificationDue runs on the grain's
        // scheduler, so it cannot see the request before it is added below.
        CountCaller(caller, 1);
        try
        {
            request.Registration = Tracker.RequestNotification(
                lsn,
                result =>
                {
                    CountCaller(request.Caller, -1);
                    _ = Task.Factory.StartNew(() => OnNotificationDue(request, result), CancellationToken.None, TaskCreationOptions.None, _scheduler);
                },
                _options.Observers.NotificationLifetime);
        }
        catch
        {
            CountCaller(caller, -1);
            throw;
        }

        _notifications.Add(request);
        UpdateKeepAlive();
        return Task.CompletedTask;
    }

    public Task Subscribe(ILsnObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        bool isNew = !_pushes.ContainsKey(observer.GetGrainId());
        if (isNew && _pushes.Count >= _options.Observers.MaxSubscribers)
        {
            throw new LimitExceededException(MaxSubscribersKey, _options.Observers.MaxSubscribers, $"The tracker of region '{_region}'", "subscribers");
        }

        _subscribers.Subscribe(observer, observer);
        if (isNew)
        {
            _pushes[observer.GetGrainId()] = new PushState(observer);
            Log.Subscribed(_logger, _region, observer.GetGrainId(), _pushes.Count);
        }

        if (_replay is null)
        {
            FollowReplay();
        }
        else if (isNew && Tracker.LastReplay is Lsn current)
        {
            // A new subscriber learns the current position at once instead of at the next advance.
            Offer(_pushes[observer.GetGrainId()], current);
        }

        UpdateKeepAlive();
        return Task.CompletedTask;
    }

    public Task Unsubscribe(ILsnObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        Forget(observer.GetGrainId(), observer);
        return Task.CompletedTask;
    }

    public Task<LsnTrackerStatus> GetStatus()
    {
        LsnTracker tracker = Tracker;
        TrackerHealth health = tracker.Health;
        return Task.FromResult(new LsnTrackerStatus
        {
            Region = _region,
            Silo = _silo.SiloAddress.ToParsableString(),
            LastReplay = tracker.LastReplay,
            IsPrimary = tracker.IsPrimary,
            Health = health.Status,
            HealthSince = health.Since,
            LastError = health.LastError,
            PendingWaiters = tracker.PendingWaiters,
            Subscribers = _pushes.Count,
            Views = _views.Count,
            ViewsWithDemand = ViewsWithDemand(),
        });
    }

    private static void ThrowIfInvalid(Lsn lsn)
    {
        if (!lsn.IsValid)
        {
            throw InvalidLsn();
        }
    }

    // default(Lsn) reaching a tracker is a caller's bug: every real WAL position is past 0/0.
    private static ArgumentException InvalidLsn() => new(
        "LSN 0/0 (Lsn.Invalid, the default value) is not a WAL position; wait for the LSN PrimaryLsn.GetCurrentInsertLsnAsync returned after your commit.",
        "lsn");

    private static LsnTrackerOptions CopyEngineOptions(LsnTrackerOptions t, string replica) => new()
    {
        ReplicaConnectionString = replica,
        DefaultWaitTimeout = t.DefaultWaitTimeout,
        MaxWaitTimeout = t.MaxWaitTimeout,
        ActivePollInterval = t.ActivePollInterval,
        FollowWindow = t.FollowWindow,
        WatchPollInterval = t.WatchPollInterval,
        IdlePollInterval = t.IdlePollInterval,
        QueryTimeout = t.QueryTimeout,
        ReconnectInitialDelay = t.ReconnectInitialDelay,
        ReconnectMaxDelay = t.ReconnectMaxDelay,
        MaxPendingWaiters = t.MaxPendingWaiters,
    };

    private async Task ReadReplayAsync(LsnReplaySubscription replay)
    {
        // Started by whichever call subscribed first, but no caller's: its pushes join no trace.
        Activity.Current = null;
        // Runs on the grain's scheduler; ends when the subscription is disposed (no subscribers left) or the tracker stops.
        while (await replay.Updates.WaitToReadAsync().ConfigureAwait(true))
        {
            Lsn latest = default;
            while (replay.Updates.TryRead(out Lsn lsn))
            {
                latest = lsn;
            }

            if (!ReferenceEquals(replay, _replay))
            {
                return;
            }

            _subscribers.Notify(o =>
            {
                if (_pushes.TryGetValue(o.GetGrainId(), out PushState? state))
                {
                    Offer(state, latest);
                }
            });
            OfferToViewsWithDemand();
            ReconcileSubscribers();
        }
    }

    private void Offer(PushState state, Lsn replay)
    {
        if (replay > state.Latest)
        {
            state.Latest = replay;
        }

        if (!state.InFlight && state.Latest > state.Sent)
        {
            state.InFlight = true;
            Track(PushAsync(state));
        }
    }

    private async Task PushAsync(PushState state)
    {
        // Pushes go on after the call that started them; they join no caller's trace.
        Activity.Current = null;
        try
        {
            while (state.Latest > state.Sent && _pushes.TryGetValue(state.Observer.GetGrainId(), out PushState? current) && ReferenceEquals(current, state))
            {
                Lsn value = state.Latest;
                try
                {
                    await state.Observer.OnReplayAdvanced(_region, value).WaitAsync(_options.Observers.PushTimeout).ConfigureAwait(true);
                    state.Sent = value;
                }
#pragma warning disable CA1031 // Any failure of a push means the observer is gone or broken; it is dropped, the others go on.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Log.ObserverDropped(_logger, _region, state.Observer.GetGrainId(), ObserverFailures.Describe(e));
                    TrackerMetrics.ObserversDropped.Add(1, new KeyValuePair<string, object?>("orleanslsn.region", _region));
                    Forget(state.Observer.GetGrainId(), state.Observer);
                    return;
                }
            }
        }
        finally
        {
            state.InFlight = false;
        }
    }

    private void OnNotificationDue(NotificationRequest request, LsnWaitResult result)
    {
        if (!_notifications.Remove(request))
        {
            return;
        }

        UpdateKeepAlive();
        if (result.Outcome == LsnWaitOutcome.Ready)
        {
            Track(NotifyAsync(request, result.ReplayLsn ?? request.Lsn));
        }
        else
        {
            Log.NotificationExpired(_logger, _region, request.Lsn, request.Observer.GetGrainId());
        }
    }

    private async Task NotifyAsync(NotificationRequest request, Lsn replay)
    {
        try
        {
            await request.Observer.OnLsnReplicated(_region, request.Lsn, replay).WaitAsync(_options.Observers.PushTimeout).ConfigureAwait(true);
        }
#pragma warning disable CA1031 // A notification is pushed once; a failure is logged, never thrown into the tracker.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.NotificationFailed(_logger, _region, request.Lsn, request.Observer.GetGrainId(), ObserverFailures.Describe(e));
        }
    }

    private void Forget(GrainId id, ILsnObserver observer)
    {
        _subscribers.Unsubscribe(observer);
        if (_pushes.Remove(id))
        {
            Log.Unsubscribed(_logger, _region, id, _pushes.Count);
        }

        ReconcileSubscribers();
    }

    private Task Housekeep(CancellationToken cancellationToken)
    {
        _subscribers.ClearExpired();
        ReconcileSubscribers();
        return Task.CompletedTask;
    }

    /// <summary>Drops push state of expired subscribers, stops following the replay when nobody listens, updates keep-alive.</summary>
    private void ReconcileSubscribers()
    {
        if (_pushes.Count != _subscribers.Count)
        {
            var live = new HashSet<GrainId>(_subscribers.Select(o => o.GetGrainId()));
            foreach (GrainId id in _pushes.Keys.Where(id => !live.Contains(id)).ToList())
            {
                _pushes.Remove(id);
                Log.SubscriptionExpired(_logger, _region, id);
            }
        }

        if (_pushes.Count == 0 && _views.Count == 0 && _replay is not null)
        {
            _replay.Dispose();
            _replay = null;
        }

        UpdateKeepAlive();
    }

    private void UpdateKeepAlive()
    {
        bool needed = _pushes.Count > 0 || _notifications.Count > 0 || _views.Count > 0;
        if (needed != _keptAlive)
        {
            _keptAlive = needed;
            DelayDeactivation(needed ? Timeout.InfiniteTimeSpan : TimeSpan.Zero);
        }
    }

    private void Track(Task task)
    {
        if (task.IsCompleted)
        {
            return;
        }

        _inFlight.Add(task);
        _ = task.ContinueWith(t => _inFlight.Remove(t), CancellationToken.None, TaskContinuationOptions.None, _scheduler);
    }

    private sealed class PushState(ILsnObserver observer)
    {
        internal ILsnObserver Observer { get; } = observer;

        internal Lsn Latest { get; set; }

        internal Lsn Sent { get; set; }

        internal bool InFlight { get; set; }
    }

    private sealed class NotificationRequest(Lsn lsn, ILsnObserver observer, GrainId caller)
    {
        internal Lsn Lsn { get; } = lsn;

        internal ILsnObserver Observer { get; } = observer;

        /// <summary>Who asked: the request counts toward that caller's cap until it fires or expires.</summary>
        internal GrainId Caller { get; } = caller;

        internal IDisposable? Registration { get; set; }
    }
}
