using Microsoft.Extensions.Logging;

namespace OrleansLsn.Client;

/// <summary>
/// A grain observer subscription that keeps itself alive: it holds the observer (Orleans holds observers only weakly)
/// and its object reference, subscribes again every <see cref="SubscriptionOptions.RenewalPeriod"/> (idempotent on the
/// grains), and after a failed renewal tries again at once with backoff. Disposing it stops the renewals, unsubscribes
/// (best effort, bounded by <see cref="SubscriptionOptions.CallTimeout"/>) and deletes the object reference; no pushes
/// reach the observer after that. Dispose it: an undisposed subscription renews itself until the client stops.
/// </summary>
public abstract partial class ObserverSubscription : IAsyncDisposable
{
    private readonly IClusterClient _client;
    private readonly TimeProvider _time;
    private readonly TimeSpan _renewalPeriod;
    private readonly TimeSpan _retryInitialDelay;
    private readonly TimeSpan _retryMaxDelay;
    private readonly TimeSpan _callTimeout;
    private readonly TimeSpan _startTimeout;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private Task? _renewals;
    private Task? _disposal;
    private long _resubscribed;
    private long _failedRenewals;
    private long _pushes;
    private Exception? _lastError;
    private long _lastRenewalTicks;

    private protected ObserverSubscription(IClusterClient client, string target, SubscriptionOptions? options, ILogger logger)
    {
        options ??= new SubscriptionOptions();
        var result = new SubscriptionOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new ArgumentException("Invalid subscription options: " + string.Join(" ", result.Failures), nameof(options));
        }

        _client = client;
        Target = target;
        Logger = logger;
        _time = options.TimeProvider ?? client.ServiceProvider.GetService(typeof(TimeProvider)) as TimeProvider ?? TimeProvider.System;
        _renewalPeriod = options.RenewalPeriod;
        _retryInitialDelay = options.RetryInitialDelay;
        _retryMaxDelay = options.RetryMaxDelay;
        _callTimeout = options.CallTimeout;
        _startTimeout = options.StartTimeout;
    }

    /// <summary>Successful subscribe calls after the first one (periodic renewals and recoveries).</summary>
    public long Resubscribed => Interlocked.Read(ref _resubscribed);

    /// <summary>Renewals that failed (each is retried with backoff).</summary>
    public long FailedRenewals => Interlocked.Read(ref _failedRenewals);

    /// <summary>The error of the last failed renewal, kept after later successes; <see langword="null"/> if none failed.</summary>
    public Exception? LastError => Volatile.Read(ref _lastError);

    /// <summary>When the grain last accepted the subscription (the first subscribe or a renewal).</summary>
    public DateTimeOffset LastRenewal => new(Interlocked.Read(ref _lastRenewalTicks), TimeSpan.Zero);

    /// <summary>Pushes delivered to the observer.</summary>
    public long Pushes => Interlocked.Read(ref _pushes);

    /// <summary>Whether <see cref="DisposeAsync"/> has been called.</summary>
    public bool IsDisposed => _stop.IsCancellationRequested;

    /// <summary>The grain key this subscribes to (a region or a slot), for logs.</summary>
    private protected string Target { get; }

    private protected ILogger Logger { get; }

    private protected IClusterClient Client => _client;

    /// <summary>Stops the renewals, unsubscribes (best effort) and deletes the object reference. Safe to call more than once.</summary>
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _disposal ??= DisposeCoreAsync();
            return new ValueTask(_disposal);
        }
    }

    /// <summary>Creates the object reference of the relay (kept by the subclass).</summary>
    private protected abstract void CreateReference();

    /// <summary>One subscribe call on the grain with the object reference.</summary>
    private protected abstract Task SubscribeOnceAsync();

    /// <summary>One unsubscribe call on the grain.</summary>
    private protected abstract Task UnsubscribeOnceAsync();

    /// <summary>Deletes the object reference.</summary>
    private protected abstract void DeleteReference();

    private protected void CountPush() => Interlocked.Increment(ref _pushes);

    /// <summary>Creates the reference, subscribes once within <see cref="SubscriptionOptions.StartTimeout"/> (failures reach the caller) and starts the renewals.</summary>
    private protected async Task StartAsync(CancellationToken cancellationToken)
    {
        CreateReference();
        try
        {
            await SubscribeOnceAsync().WaitAsync(_startTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            TryDeleteReference();
            _stop.Cancel();
            throw;
        }

        Interlocked.Exchange(ref _lastRenewalTicks, _time.GetUtcNow().UtcTicks);
        Log.Subscribed(Logger, GetType().Name, Target, _renewalPeriod.TotalMilliseconds);
        lock (_lock)
        {
            _renewals = RenewAsync(_stop.Token);
        }
    }

    private async Task RenewAsync(CancellationToken stop)
    {
        // Off the caller's context; the task is owned by this subscription and awaited by DisposeAsync.
        await Task.Yield();
        TimeSpan pause = _renewalPeriod;
        TimeSpan backoff = _retryInitialDelay;
        int failuresInRow = 0;
        while (true)
        {
            try
            {
                await Task.Delay(pause, _time, stop).ConfigureAwait(false);
                await SubscribeOnceAsync().WaitAsync(_callTimeout, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Any failure of a renewal is retried; the subscription must outlive silo and gateway failures.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failuresInRow++;
                Interlocked.Increment(ref _failedRenewals);
                Volatile.Write(ref _lastError, e);
                Log.RenewalFailed(Logger, GetType().Name, Target, failuresInRow, backoff.TotalMilliseconds, e.GetType().Name, e.Message);
                pause = backoff;
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _retryMaxDelay.Ticks));
                continue;
            }

            Interlocked.Increment(ref _resubscribed);
            Interlocked.Exchange(ref _lastRenewalTicks, _time.GetUtcNow().UtcTicks);
            if (failuresInRow > 0)
            {
                Log.RenewedAfterFailures(Logger, GetType().Name, Target, failuresInRow);
            }
            else
            {
                Log.Renewed(Logger, GetType().Name, Target);
            }

            failuresInRow = 0;
            pause = _renewalPeriod;
            backoff = _retryInitialDelay;
        }
    }

    private async Task DisposeCoreAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Task? renewals;
        lock (_lock)
        {
            renewals = _renewals;
        }

        if (renewals is not null)
        {
            await renewals.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            try
            {
                await UnsubscribeOnceAsync().WaitAsync(_callTimeout, _time).ConfigureAwait(false);
                Log.Unsubscribed(Logger, GetType().Name, Target);
            }
#pragma warning disable CA1031 // Best effort: the grain drops an observer it cannot reach, and a tracker's subscription expires.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Log.UnsubscribeFailed(Logger, GetType().Name, Target, e.GetType().Name, e.Message);
            }

            TryDeleteReference();
        }

        _stop.Dispose();
    }

    private void TryDeleteReference()
    {
        try
        {
            DeleteReference();
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
}
