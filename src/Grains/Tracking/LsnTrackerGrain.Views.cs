using OrleansLsn.Hosting;

namespace OrleansLsn.Tracking;

/// <summary>
/// Client replay views (<see cref="ILsnTrackerGrain.WatchReplay"/>): a view with demand gets every advance and makes the
/// engine poll at its active rate (through one notification request per view, so the cost never grows with the number
/// of waits in the client); a view without demand gets the state at most once per refresh interval, when it changed.
/// </summary>
internal sealed partial class LsnTrackerGrain
{
    private readonly Dictionary<GrainId, ViewState> _views = new();
    private readonly long _epoch = NewEpoch();
    private IGrainTimer? _viewRefresh;

    public Task<ReplayViewState> WatchReplay(IReplayViewObserver view, Lsn? until = null, TimeSpan? lease = null)
    {
        ArgumentNullException.ThrowIfNull(view);
        if (until is Lsn target && !target.IsValid)
        {
            throw InvalidLsn();
        }

        TimeSpan leaseValue = lease ?? _options.Tracker.DefaultWaitTimeout;
        if (leaseValue <= TimeSpan.Zero || leaseValue > _options.Tracker.MaxWaitTimeout)
        {
            throw new ArgumentOutOfRangeException(
                nameof(lease), leaseValue, $"The demand's lease must be positive and at most {_options.Tracker.MaxWaitTimeout} (OrleansLsn:Tracker:MaxWaitTimeout).");
        }

        LsnTracker tracker = Tracker;
        GrainId id = view.GetGrainId();
        if (!_views.TryGetValue(id, out ViewState? state))
        {
            if (_views.Count + _pushes.Count >= _options.Observers.MaxSubscribers)
            {
                throw new LimitExceededException(MaxSubscribersKey, _options.Observers.MaxSubscribers, $"The tracker of region '{_region}'", "subscribers and views");
            }

            state = new ViewState(view);
            _views[id] = state;
            Log.ViewAdded(_logger, _region, id, _views.Count);
        }

        long now = TimeProvider.System.GetTimestamp();
        state.ExpiresAt = now + ToTimestamps(_options.Observers.SubscriptionExpiry);
        EndDemand(state);
        (Lsn? replay, bool isPrimary, long version) = tracker.Current;
        var current = new ReplayViewState(_region, replay, isPrimary, _epoch, version);
        if (until is Lsn wanted && !current.Covers(wanted))
        {
            state.Until = wanted;
            state.LeaseEnd = now + ToTimestamps(leaseValue);
            try
            {
                // One waiter per view whatever its number of waits: it keeps the engine polling at the active rate.
                state.Demand = tracker.RequestNotification(wanted, static _ => { }, leaseValue);
            }
            catch (LimitExceededException)
            {
                // The tracker is at its waiter cap: the view still gets every advance, polled at the subscriber rate.
            }
        }

        // The answer is this state: a push of it (or of anything older) is not needed.
        state.Sent = Math.Max(state.Sent, version);
        FollowReplay();
        UpdateKeepAlive();
        return Task.FromResult(current);
    }

    public Task UnwatchReplay(IReplayViewObserver view)
    {
        ArgumentNullException.ThrowIfNull(view);
        ForgetView(view.GetGrainId());
        return Task.CompletedTask;
    }

    private static long NewEpoch()
    {
        long epoch;
        do
        {
            epoch = Random.Shared.NextInt64();
        }
        while (epoch == 0);
        return epoch;
    }

    private static long ToTimestamps(TimeSpan span) => (long)(span.TotalSeconds * TimeProvider.System.TimestampFrequency);

    /// <summary>Follows the engine's advances while anyone listens, and refreshes idle views on a timer while views exist.</summary>
    private void FollowReplay()
    {
        if (_replay is null && (_pushes.Count > 0 || _views.Count > 0))
        {
            _replay = Tracker.SubscribeReplay();
            Track(ReadReplayAsync(_replay));
        }

        if (_views.Count > 0 && _viewRefresh is null)
        {
            TimeSpan period = _options.Observers.ViewRefreshInterval;
            _viewRefresh = this.RegisterGrainTimer(RefreshViews, new GrainTimerCreationOptions { DueTime = period, Period = period, Interleave = true, KeepAlive = false });
        }
        else if (_views.Count == 0 && _viewRefresh is not null)
        {
            _viewRefresh.Dispose();
            _viewRefresh = null;
        }
    }

    /// <summary>On every advance: the views with demand get it; a demand that is met or past its lease ends.</summary>
    private void OfferToViewsWithDemand()
    {
        if (_views.Count == 0 || _tracker is null)
        {
            return;
        }

        long now = TimeProvider.System.GetTimestamp();
        (Lsn? replay, bool isPrimary, long _) = _tracker.Current;
        foreach (ViewState state in _views.Values)
        {
            if (state.Until is not Lsn until)
            {
                continue;
            }

            // Owed: a push in flight carries an older state; the view gets this one after it, demand or not.
            state.Owed = true;
            OfferView(state);
            if (isPrimary || replay >= until || now >= state.LeaseEnd)
            {
                EndDemand(state);
            }
        }
    }

    private Task RefreshViews(CancellationToken cancellationToken)
    {
        if (_tracker is null)
        {
            return Task.CompletedTask;
        }

        long now = TimeProvider.System.GetTimestamp();
        List<GrainId>? expired = null;
        foreach ((GrainId id, ViewState state) in _views)
        {
            if (now >= state.ExpiresAt)
            {
                (expired ??= []).Add(id);
                continue;
            }

            if (state.Until is not null && now >= state.LeaseEnd)
            {
                EndDemand(state);
            }

            OfferView(state);
        }

        foreach (GrainId id in expired ?? [])
        {
            Log.ViewExpired(_logger, _region, id);
            ForgetView(id);
        }

        return Task.CompletedTask;
    }

    private void OfferView(ViewState state)
    {
        if (!state.InFlight && _tracker is { } tracker && tracker.Current.Version > state.Sent)
        {
            state.InFlight = true;
            Track(PushViewAsync(state));
        }
    }

    private async Task PushViewAsync(ViewState state)
    {
        // Pushes go on after the call that started them (a view's demand lasts); they join no caller's trace.
        System.Diagnostics.Activity.Current = null;
        try
        {
            while (_tracker is { } tracker && _views.TryGetValue(state.Observer.GetGrainId(), out ViewState? current) && ReferenceEquals(current, state))
            {
                (Lsn? replay, bool isPrimary, long version) = tracker.Current;
                if (version <= state.Sent)
                {
                    return;
                }

                state.Owed = false;

                try
                {
                    await state.Observer.OnReplayView(new ReplayViewState(_region, replay, isPrimary, _epoch, version)).WaitAsync(_options.Observers.PushTimeout).ConfigureAwait(true);
                    state.Sent = Math.Max(state.Sent, version);
                    TrackerMetrics.ViewPushes.Add(1, new KeyValuePair<string, object?>("orleanslsn.region", _region));
                }
#pragma warning disable CA1031 // Any failure of a push means the view is gone or broken; it is dropped, its next call registers it again.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Log.ViewDropped(_logger, _region, state.Observer.GetGrainId(), ObserverFailures.Describe(e));
                    TrackerMetrics.ObserversDropped.Add(1, new KeyValuePair<string, object?>("orleanslsn.region", _region));
                    ForgetView(state.Observer.GetGrainId());
                    return;
                }

                // A view without demand gets one push per refresh; one with demand gets every advance, one at a time.
                if (state.Until is null && !state.Owed)
                {
                    return;
                }
            }
        }
        finally
        {
            state.InFlight = false;
        }
    }

    private static void EndDemand(ViewState state)
    {
        state.Demand?.Dispose();
        state.Demand = null;
        state.Until = null;
    }

    private void ForgetView(GrainId id)
    {
        if (_views.Remove(id, out ViewState? state))
        {
            EndDemand(state);
            Log.ViewRemoved(_logger, _region, id, _views.Count);
        }

        ReconcileSubscribers();
    }

    private void EndViews()
    {
        foreach (ViewState state in _views.Values)
        {
            EndDemand(state);
        }

        _views.Clear();
        _viewRefresh?.Dispose();
        _viewRefresh = null;
    }

    private int ViewsWithDemand()
    {
        int count = 0;
        foreach (ViewState state in _views.Values)
        {
            if (state.Until is not null)
            {
                count++;
            }
        }

        return count;
    }

    private sealed class ViewState(IReplayViewObserver observer)
    {
        internal IReplayViewObserver Observer { get; } = observer;

        /// <summary>The highest LSN the view waits for while its demand lasts; <see langword="null"/> without demand.</summary>
        internal Lsn? Until { get; set; }

        /// <summary>When the demand ends unless met before (a timestamp).</summary>
        internal long LeaseEnd { get; set; }

        /// <summary>The engine waiter that keeps the replica polled fast while the demand lasts.</summary>
        internal IDisposable? Demand { get; set; }

        /// <summary>When the registration expires unless renewed (a timestamp).</summary>
        internal long ExpiresAt { get; set; }

        /// <summary>The newest version the view was given (pushed or answered).</summary>
        internal long Sent { get; set; }

        internal bool InFlight { get; set; }

        /// <summary>An advance arrived for a view with demand while its push was in flight: push the newest after it.</summary>
        internal bool Owed { get; set; }
    }
}
