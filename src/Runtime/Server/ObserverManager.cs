using System.Collections;
using Microsoft.Extensions.Logging;

namespace OrleansLsn.Runtime;

/// <summary>
/// Keeps a grain's subscribers with an expiry, and notifies them (Orleans: <c>ObserverManager&lt;TIdentity, TObserver&gt;</c>).
/// Subscribers re-subscribe to stay alive; expired ones are dropped at the next notification, and so is any
/// observer whose call fails (a client that is gone fails at once with <see cref="ClientNotAvailableException"/>).
/// Not thread-safe: use it from the grain's turns, as in Orleans.
/// </summary>
public class ObserverManager<TIdentity, TObserver> : IEnumerable<TObserver>
    where TIdentity : notnull
{
    private readonly Dictionary<TIdentity, (TObserver Observer, DateTimeOffset LastSeen)> _observers = [];
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;

    /// <summary>Creates a manager whose subscriptions expire after <paramref name="expiration"/> without a re-subscribe.</summary>
    public ObserverManager(TimeSpan expiration, ILogger logger, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ExpirationDuration = expiration;
        _logger = logger;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>How long a subscription lives without a re-subscribe. <see cref="TimeSpan.MaxValue"/> means forever.</summary>
    public TimeSpan ExpirationDuration { get; set; }

    /// <summary>The number of subscriptions, expired ones included until the next notification.</summary>
    public int Count => _observers.Count;

    /// <summary>The subscribed observers.</summary>
    public IReadOnlyCollection<TObserver> Observers => _observers.Values.Select(v => v.Observer).ToList();

    /// <summary>Adds or refreshes a subscription.</summary>
    public void Subscribe(TIdentity id, TObserver observer)
    {
        bool isNew = !_observers.ContainsKey(id);
        _observers[id] = (observer, _timeProvider.GetUtcNow());
        if (isNew)
        {
            ObserverManagerLog.Added(_logger, id.ToString() ?? "?", _observers.Count);
        }
    }

    /// <summary>Removes a subscription.</summary>
    public void Unsubscribe(TIdentity id)
    {
        if (_observers.Remove(id))
        {
            ObserverManagerLog.Removed(_logger, id.ToString() ?? "?", "unsubscribed", _observers.Count);
        }
    }

    /// <summary>Removes every subscription.</summary>
    public void Clear() => _observers.Clear();

    /// <summary>Removes expired subscriptions.</summary>
    public void ClearExpired()
    {
        DateTimeOffset now = _timeProvider.GetUtcNow();
        foreach (TIdentity id in _observers.Where(e => IsExpired(e.Value.LastSeen, now)).Select(e => e.Key).ToList())
        {
            _observers.Remove(id);
            ObserverManagerLog.Removed(_logger, id.ToString() ?? "?", "expired", _observers.Count);
        }
    }

    /// <summary>
    /// Calls <paramref name="notification"/> for every live observer (optionally filtered) without waiting for the calls;
    /// an observer whose call throws synchronously is removed. Use it with one-way observer methods.
    /// </summary>
    public void Notify(Action<TObserver> notification, Func<TObserver, bool>? predicate = null)
    {
        ArgumentNullException.ThrowIfNull(notification);
        ClearExpired();
        List<TIdentity>? defunct = null;
        foreach (KeyValuePair<TIdentity, (TObserver Observer, DateTimeOffset LastSeen)> entry in _observers)
        {
            if (predicate is not null && !predicate(entry.Value.Observer))
            {
                continue;
            }

            try
            {
                notification(entry.Value.Observer);
            }
#pragma warning disable CA1031 // Any failure removes the observer, as in Orleans.
            catch (Exception e)
#pragma warning restore CA1031
            {
                ObserverManagerLog.Failed(_logger, entry.Key.ToString() ?? "?", e.Message);
                (defunct ??= []).Add(entry.Key);
            }
        }

        RemoveDefunct(defunct);
    }

    /// <summary>
    /// Calls <paramref name="notification"/> for every live observer concurrently and waits for all; every observer
    /// whose call fails (exception, timeout, client gone) is removed. Never throws for an observer's failure.
    /// </summary>
    public async Task Notify(Func<TObserver, Task> notification, Func<TObserver, bool>? predicate = null)
    {
        ArgumentNullException.ThrowIfNull(notification);
        ClearExpired();
        var calls = new List<(TIdentity Id, Task Call)>(_observers.Count);
        foreach (KeyValuePair<TIdentity, (TObserver Observer, DateTimeOffset LastSeen)> entry in _observers)
        {
            if (predicate is not null && !predicate(entry.Value.Observer))
            {
                continue;
            }

            Task call;
            try
            {
                call = notification(entry.Value.Observer);
            }
#pragma warning disable CA1031 // Any failure removes the observer.
            catch (Exception e)
#pragma warning restore CA1031
            {
                call = Task.FromException(e);
            }

            calls.Add((entry.Key, call));
        }

        List<TIdentity>? defunct = null;
        foreach ((TIdentity id, Task call) in calls)
        {
            await call.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
            if (!call.IsCompletedSuccessfully)
            {
                ObserverManagerLog.Failed(_logger, id.ToString() ?? "?", call.Exception?.InnerException?.Message ?? "canceled");
                (defunct ??= []).Add(id);
            }
        }

        RemoveDefunct(defunct);
    }

    /// <inheritdoc />
    public IEnumerator<TObserver> GetEnumerator() => Observers.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private void RemoveDefunct(List<TIdentity>? defunct)
    {
        if (defunct is null)
        {
            return;
        }

        foreach (TIdentity id in defunct)
        {
            if (_observers.Remove(id))
            {
                ObserverManagerLog.Removed(_logger, id.ToString() ?? "?", "its call failed", _observers.Count);
            }
        }
    }

    private bool IsExpired(DateTimeOffset lastSeen, DateTimeOffset now) =>
        ExpirationDuration != TimeSpan.MaxValue && now - lastSeen > ExpirationDuration;
}

/// <summary>An <see cref="ObserverManager{TIdentity, TObserver}"/> keyed by the observer reference itself (Orleans: <c>ObserverManager&lt;TObserver&gt;</c>).</summary>
public class ObserverManager<TObserver> : ObserverManager<IAddressable, TObserver>
    where TObserver : IAddressable
{
    /// <summary>Creates a manager whose subscriptions expire after <paramref name="expiration"/> without a re-subscribe.</summary>
    public ObserverManager(TimeSpan expiration, ILogger logger, TimeProvider? timeProvider = null)
        : base(expiration, logger, timeProvider)
    {
    }
}

internal static partial class ObserverManagerLog
{
    [LoggerMessage(EventId = 3400, Level = LogLevel.Debug, Message = "Observer {Observer} subscribed ({Count} now)")]
    public static partial void Added(ILogger logger, string observer, int count);

    [LoggerMessage(EventId = 3401, Level = LogLevel.Debug, Message = "Observer {Observer} removed: {Reason} ({Count} left)")]
    public static partial void Removed(ILogger logger, string observer, string reason, int count);

    [LoggerMessage(EventId = 3402, Level = LogLevel.Information, Message = "A call to observer {Observer} failed: {Reason}")]
    public static partial void Failed(ILogger logger, string observer, string reason);
}
