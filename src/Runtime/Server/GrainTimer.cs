namespace OrleansLsn.Runtime;

/// <summary>A grain timer: each tick is queued as a turn of its activation; the next tick is armed after the callback completes.</summary>
internal sealed class GrainTimer : IGrainTimer
{
    private readonly ActivationData _activation;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _disposed = new();
    private GrainTimerCreationOptions _options;

    public GrainTimer(ActivationData activation, Func<CancellationToken, Task> callback, GrainTimerCreationOptions options, TimeProvider timeProvider)
    {
        Validate(options.DueTime, options.Period);
        _activation = activation;
        Callback = callback;
        _options = options;
        _timer = timeProvider.CreateTimer(static s => ((GrainTimer)s!).OnFire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _timer.Change(options.DueTime, Timeout.InfiniteTimeSpan);
    }

    public Func<CancellationToken, Task> Callback { get; }

    public GrainTimerCreationOptions Options => _options;

    /// <summary>Cancelled when the timer is disposed (including at deactivation).</summary>
    public CancellationToken Token => _disposed.Token;

    public void Change(TimeSpan dueTime, TimeSpan period)
    {
        Validate(dueTime, period);
        _options = _options with { DueTime = dueTime, Period = period };
        if (!_disposed.IsCancellationRequested)
        {
            _timer.Change(dueTime, Timeout.InfiniteTimeSpan);
        }
    }

    public void ScheduleNext()
    {
        if (!_disposed.IsCancellationRequested && _options.Period != Timeout.InfiniteTimeSpan)
        {
            try
            {
                _timer.Change(_options.Period, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Disposed concurrently.
            }
        }
    }

    public void Dispose()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        _disposed.Cancel();
        _timer.Dispose();
        _activation.RemoveTimer(this);
    }

    private void OnFire()
    {
        if (!_disposed.IsCancellationRequested)
        {
            _activation.EnqueueTimerTick(new TimerTick(this));
        }
    }

    private static void Validate(TimeSpan dueTime, TimeSpan period)
    {
        if (dueTime < TimeSpan.Zero && dueTime != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(dueTime), dueTime, "The due time must be zero or more, or infinite.");
        }

        if (period <= TimeSpan.Zero && period != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(period), period, "The period must be positive, or infinite.");
        }
    }
}
