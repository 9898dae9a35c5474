using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime.Invocation;
using OrleansLsn.Runtime.Messaging;

namespace OrleansLsn.Runtime;

/// <summary>
/// One activation of a grain. Invariants, all under <c>_lock</c>: turns start only in state <see cref="State.Valid"/>;
/// while any turn runs, a new one starts only if it interleaves (reentrant grain, [AlwaysInterleave], an interleaving
/// timer, or a call chain that loops back here); otherwise it waits in FIFO order. All turns run on one exclusive
/// scheduler, so even interleaved turns never run in parallel. Deactivation waits for running turns, then calls
/// <c>OnDeactivateAsync</c>; requests that arrive meanwhile go to a new activation afterwards.
/// </summary>
internal sealed partial class ActivationData
{
    private readonly Lock _lock = new();
    private readonly LinkedList<WorkItem> _waiting = new();
    private readonly List<GrainTimer> _timers = [];
    private readonly Catalog _catalog;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource _deactivated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private State _state = State.Created;
    private int _running;
    private bool _deactivateOnIdle;
    private bool _deactivationScheduled;
    private int _waitingInterleavable;
    private DeactivationReason _reason;
    private long _lastActivity = Stopwatch.GetTimestamp();
    private long _keepAliveUntil;

    public ActivationData(GrainId grainId, GrainClass grainClass, SiloRuntime runtime, Catalog catalog, ILogger logger)
    {
        GrainId = grainId;
        Class = grainClass;
        Runtime = runtime;
        _catalog = catalog;
        _logger = logger;
        SelfChain = [grainId];
        Scheduler = new ConcurrentExclusiveSchedulerPair(TaskScheduler.Default, 1, 64).ExclusiveScheduler;
    }

    public enum State
    {
        Created,
        Activating,
        Valid,
        Deactivating,
        Invalid,
    }

    public GrainId GrainId { get; }

    public GrainClass Class { get; }

    public SiloRuntime Runtime { get; }

    public GrainId[] SelfChain { get; }

    public TaskScheduler Scheduler { get; }

    public Grain? Instance { get; private set; }

    public bool AllowCallChainReentrancy => Runtime.Options.AllowCallChainReentrancy;

    public Task Deactivated => _deactivated.Task;

    public State CurrentState
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Queues a turn. False if the activation is gone; the caller then picks a new activation.</summary>
    public bool TryEnqueue(WorkItem item)
    {
        bool activate = false;
        bool start = false;
        lock (_lock)
        {
            switch (_state)
            {
                case State.Invalid:
                    return false;
                case State.Created:
                    _state = State.Activating;
                    activate = true;
                    Wait(item);
                    break;
                case State.Activating:
                case State.Deactivating:
                    Wait(item);
                    break;
                default:
                    if (_running == 0 ? _waiting.Count == 0 : item.Interleaves(this))
                    {
                        _running++;
                        start = true;
                    }
                    else
                    {
                        Wait(item);
                    }

                    break;
            }
        }

        if (activate)
        {
            Schedule(static s => ((ActivationData)s!).ActivateAsync(), this);
        }
        else if (start)
        {
            StartTurn(item);
        }

        return true;
    }

    public void EnqueueTimerTick(TimerTick tick)
    {
        lock (_lock)
        {
            if (_state != State.Valid)
            {
                return;
            }
        }

        TryEnqueue(tick);
    }

    public void RequestDeactivateOnIdle()
    {
        lock (_lock)
        {
            _deactivateOnIdle = true;
        }
    }

    public void DelayDeactivation(TimeSpan timeSpan)
    {
        long until = timeSpan == Timeout.InfiniteTimeSpan || timeSpan > TimeSpan.FromDays(3650)
            ? long.MaxValue
            : Stopwatch.GetTimestamp() + (long)(Math.Max(0, timeSpan.TotalSeconds) * Stopwatch.Frequency);
        lock (_lock)
        {
            _keepAliveUntil = until;
        }
    }

    public IGrainTimer RegisterTimer(Func<CancellationToken, Task> callback, GrainTimerCreationOptions options)
    {
        var timer = new GrainTimer(this, callback, options, Runtime.TimeProvider);
        lock (_lock)
        {
            if (_state is State.Deactivating or State.Invalid)
            {
                timer.Dispose();
                throw new InvalidOperationException("Cannot register a timer on an activation that is deactivating.");
            }

            _timers.Add(timer);
        }

        return timer;
    }

    public void RemoveTimer(GrainTimer timer)
    {
        lock (_lock)
        {
            _timers.Remove(timer);
        }
    }

    /// <summary>Whether the idle collector should deactivate this activation now.</summary>
    public bool IsIdleLongerThan(TimeSpan age, long now)
    {
        lock (_lock)
        {
            return _state == State.Valid && _running == 0 && _waiting.Count == 0 && !Class.KeepAlive
                && now >= _keepAliveUntil
                && Stopwatch.GetElapsedTime(_lastActivity, now) >= age;
        }
    }

    /// <summary>Begins deactivation once running turns finish. No effect unless the activation is valid.</summary>
    public void StartDeactivation(DeactivationReason reason)
    {
        bool now;
        lock (_lock)
        {
            if (_state != State.Valid)
            {
                return;
            }

            _state = State.Deactivating;
            _reason = reason;
            now = _running == 0;
            _deactivationScheduled = now;
        }

        if (now)
        {
            Schedule(static s => ((ActivationData)s!).DeactivateAsync(), this);
            return;
        }

        // Turns that never finish must not keep the activation (or a shutdown) forever: after the deactivation
        // timeout it deactivates anyway, as Orleans does.
        ITimer? force = null;
        force = Runtime.TimeProvider.CreateTimer(
            static s =>
            {
                var (activation, timer) = ((ActivationData, Func<ITimer?>))s!;
                timer()?.Dispose();
                activation.ForceDeactivation();
            },
            (this, (Func<ITimer?>)(() => force)),
            Runtime.Collection.DeactivationTimeout,
            Timeout.InfiniteTimeSpan);
    }

    private void ForceDeactivation()
    {
        int running;
        lock (_lock)
        {
            if (_state != State.Deactivating || _deactivationScheduled)
            {
                return;
            }

            _deactivationScheduled = true;
            running = _running;
        }

        LogForcedDeactivation(_logger, GrainId.ToString(), running, Runtime.Collection.DeactivationTimeout);
        Schedule(static s => ((ActivationData)s!).DeactivateAsync(), this);
    }

    private void StartTurn(WorkItem item) =>
        Task.Factory.StartNew(
            static s =>
            {
                var (activation, work) = ((ActivationData, WorkItem))s!;
                return activation.RunTurnAsync(work);
            },
            (this, item),
            CancellationToken.None,
            TaskCreationOptions.DenyChildAttach,
            Scheduler);

    private void Schedule(Func<object?, Task> action, object state) =>
        Task.Factory.StartNew(action, state, CancellationToken.None, TaskCreationOptions.DenyChildAttach, Scheduler);

    private async Task RunTurnAsync(WorkItem item)
    {
        try
        {
            await item.RunAsync(this).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext);
        }
#pragma warning disable CA1031 // Work items handle their own failures; this is a last guard so the activation keeps going.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogTurnFailed(_logger, GrainId.ToString(), e);
        }
        finally
        {
            OnTurnCompleted(item);
        }
    }

    private void OnTurnCompleted(WorkItem item)
    {
        List<WorkItem>? toStart = null;
        bool deactivate = false;
        lock (_lock)
        {
            _running--;
            Debug.Assert(_running >= 0);
            if (item.CountsAsActivity)
            {
                _lastActivity = Stopwatch.GetTimestamp();
            }

            if (_state == State.Valid && _running == 0 && _deactivateOnIdle)
            {
                _state = State.Deactivating;
                _deactivationScheduled = true;
                deactivate = true;
                _reason = new DeactivationReason(DeactivationReasonCode.ApplicationRequested, "DeactivateOnIdle was called.");
            }

            if (_state == State.Valid)
            {
                toStart = DrainLocked();
            }
            else if (_state == State.Deactivating && _running == 0 && !_deactivationScheduled)
            {
                deactivate = true;
                _deactivationScheduled = true;
            }
        }

        StartAll(toStart);
        if (deactivate)
        {
            Schedule(static s => ((ActivationData)s!).DeactivateAsync(), this);
        }
    }

    private void Wait(WorkItem item)
    {
        _waiting.AddLast(item);
        if (item.Interleaves(this))
        {
            _waitingInterleavable++;
        }
    }

    /// <summary>
    /// Starts what may start: the head if nothing runs, then every waiting item that interleaves, wherever it is in
    /// the queue, so an [AlwaysInterleave] request is never stuck behind a request that waits for it.
    /// </summary>
    private List<WorkItem>? DrainLocked()
    {
        List<WorkItem>? toStart = null;
        while (_waiting.First is { } head && (_running == 0 || head.Value.Interleaves(this)))
        {
            Take(head, ref toStart);
        }

        for (LinkedListNode<WorkItem>? node = _waiting.First; node is not null && _waitingInterleavable > 0;)
        {
            LinkedListNode<WorkItem>? next = node.Next;
            if (node.Value.Interleaves(this))
            {
                Take(node, ref toStart);
            }

            node = next;
        }

        return toStart;
    }

    private void Take(LinkedListNode<WorkItem> node, ref List<WorkItem>? toStart)
    {
        _waiting.Remove(node);
        if (node.Value.Interleaves(this))
        {
            _waitingInterleavable--;
        }

        (toStart ??= []).Add(node.Value);
        _running++;
    }

    private void StartAll(List<WorkItem>? items)
    {
        if (items is null)
        {
            return;
        }

        foreach (WorkItem item in items)
        {
            StartTurn(item);
        }
    }

    private async Task ActivateAsync()
    {
        Exception? failure = null;
        try
        {
            var grain = (Grain)Class.Factory(Runtime.Services, []);
            grain.Attach(this);
            Instance = grain;
            CallChainContext.Set(SelfChain);
            using var timeout = new CancellationTokenSource(Runtime.Collection.ActivationTimeout);
            await grain.OnActivateAsync(timeout.Token).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext);
        }
#pragma warning disable CA1031 // A failed activation fails its queued requests with the error.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failure = e;
        }

        List<WorkItem>? toStart = null;
        List<WorkItem>? failed = null;
        lock (_lock)
        {
            if (failure is null)
            {
                _state = State.Valid;
                _lastActivity = Stopwatch.GetTimestamp();
                toStart = DrainLocked();
            }
            else
            {
                _state = State.Invalid;
                failed = [.. _waiting];
                _waiting.Clear();
                _waitingInterleavable = 0;
            }
        }

        if (failure is null)
        {
            RuntimeMetrics.ActivationCreated();
            LogActivated(_logger, GrainId.ToString());
            StartAll(toStart);
            return;
        }

        LogActivationFailed(_logger, GrainId.ToString(), failure);
        DisposeTimers();
        _catalog.Remove(this);
        foreach (WorkItem item in failed!)
        {
            item.Fail(failure);
        }

        _deactivated.TrySetResult();
    }

    private async Task DeactivateAsync()
    {
        DeactivationReason reason;
        lock (_lock)
        {
            reason = _reason;
        }

        DisposeTimers();
        try
        {
            CallChainContext.Set(SelfChain);
            using var timeout = new CancellationTokenSource(Runtime.Collection.DeactivationTimeout);
            await Instance!.OnDeactivateAsync(reason, timeout.Token).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext);
        }
#pragma warning disable CA1031 // A failing OnDeactivateAsync is logged; the activation goes away regardless.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogDeactivationFailed(_logger, GrainId.ToString(), e);
        }

        List<WorkItem> pending;
        lock (_lock)
        {
            _state = State.Invalid;
            pending = [.. _waiting];
            _waiting.Clear();
            _waitingInterleavable = 0;
        }

        _catalog.Remove(this);
        RuntimeMetrics.ActivationRemoved();
        LogDeactivated(_logger, GrainId.ToString(), reason.ToString());
        foreach (WorkItem item in pending)
        {
            if (item is IncomingCall call)
            {
                _catalog.Redispatch(call, Class);
            }
        }

        _deactivated.TrySetResult();
    }

    private void DisposeTimers()
    {
        GrainTimer[] timers;
        lock (_lock)
        {
            timers = [.. _timers];
        }

        foreach (GrainTimer timer in timers)
        {
            timer.Dispose();
        }
    }

    internal void LogOneWayFailed(string method, Exception exception) => LogOneWayCallFailed(_logger, method, GrainId.ToString(), exception);

    internal void LogTimerFailed(Exception exception) => LogTimerCallbackFailed(_logger, GrainId.ToString(), exception);

    [LoggerMessage(EventId = 3200, Level = LogLevel.Debug, Message = "Activated {Grain}")]
    private static partial void LogActivated(ILogger logger, string grain);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Warning, Message = "Activation of {Grain} failed; its queued requests get the error")]
    private static partial void LogActivationFailed(ILogger logger, string grain, Exception exception);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Debug, Message = "Deactivated {Grain} ({Reason})")]
    private static partial void LogDeactivated(ILogger logger, string grain, string reason);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Warning, Message = "OnDeactivateAsync of {Grain} failed")]
    private static partial void LogDeactivationFailed(ILogger logger, string grain, Exception exception);

    [LoggerMessage(EventId = 3204, Level = LogLevel.Warning, Message = "One-way call {Method} on {Grain} failed")]
    private static partial void LogOneWayCallFailed(ILogger logger, string method, string grain, Exception exception);

    [LoggerMessage(EventId = 3205, Level = LogLevel.Warning, Message = "A timer callback of {Grain} failed")]
    private static partial void LogTimerCallbackFailed(ILogger logger, string grain, Exception exception);

    [LoggerMessage(EventId = 3207, Level = LogLevel.Warning, Message = "Deactivating {Grain} with {Running} turns still running after the deactivation timeout {Timeout}")]
    private static partial void LogForcedDeactivation(ILogger logger, string grain, int running, TimeSpan timeout);

    [LoggerMessage(EventId = 3206, Level = LogLevel.Error, Message = "A turn of {Grain} failed unexpectedly")]
    private static partial void LogTurnFailed(ILogger logger, string grain, Exception exception);
}
