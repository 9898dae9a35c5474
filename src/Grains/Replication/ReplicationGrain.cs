using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLsn.Hosting;

namespace OrleansLsn.Replication;

/// <summary>
/// One logical replication slot (the key), a thin adapter over <see cref="ReplicationPump"/>. Only slots listed in
/// <c>OrleansLsn:Replication:Slots</c> activate; any other key fails with
/// <see cref="ReplicationSlotNotConfiguredException"/> before anything is sent to PostgreSQL.
/// <para>
/// The pump's socket loop keeps its own task and pause gate; each subscribed <see cref="IChangeObserver"/> is one pump
/// subscriber whose delivery loop calls the observer (outside the grain's scheduler, touching no grain state) and
/// confirms a batch when <see cref="IChangeObserver.OnChanges"/> completes. So a slow observer holds the pump through its
/// water marks, the flush position never passes what every subscriber confirmed, and a subscriber that cannot be
/// reached is dropped after <see cref="ReplicationOptions.SubscriberTimeout"/> (the drop itself runs on the grain's
/// scheduler). The activation stays alive while it has subscribers, or always with
/// <see cref="ReplicationSlotOptions.AlwaysOn"/>; a new activation (another silo, after a failure) resumes from the
/// slot's confirmed position, and the pump's advisory lock fences a brief duplicate activation.
/// </para>
/// </summary>
internal sealed partial class ReplicationGrain : Grain, IReplicationGrain
{
    private readonly OrleansLsnOptions _options;
    private readonly SiloEngines _engines;
    private readonly ILocalSiloDetails _silo;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<GrainId, ChangeSubscriber> _subscribers = new();
    private readonly HashSet<Task> _drops = new();
    private ReplicationPump? _pump;
    private ReplicationSlotOptions? _slot;
    private TaskScheduler _scheduler = TaskScheduler.Default;
    private bool _keptAlive;

    public ReplicationGrain(IOptions<OrleansLsnOptions> options, SiloEngines engines, ILocalSiloDetails silo, ILoggerFactory loggerFactory, TimeProvider time)
    {
        _options = options.Value;
        _engines = engines;
        _silo = silo;
        _loggerFactory = loggerFactory;
        _time = time;
        _logger = loggerFactory.CreateLogger<ReplicationGrain>();
    }

    private ReplicationPump Pump => _pump ?? throw new InvalidOperationException("The replication grain is not active.");

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        string slotName = this.GetPrimaryKeyString();
        string[] configured = [.. _options.Replication.Slots.Select(s => s.Name)];
        if (PostgresIdentifiers.CheckSlotName(slotName) is { } problem)
        {
            throw new ReplicationSlotNotConfiguredException(slotName, configured, problem);
        }

        _slot = _options.Replication.Slots.FirstOrDefault(s => string.Equals(s.Name, slotName, StringComparison.Ordinal))
            ?? throw new ReplicationSlotNotConfiguredException(slotName, configured);
        _scheduler = TaskScheduler.Current;
        var pump = new ReplicationPump(PumpOptionsFactory.Create(_options, _slot), _loggerFactory.CreateLogger<ReplicationPump>(), _time);
        _engines.Add(pump);
        pump.Start();
        _pump = pump;
        UpdateKeepAlive();
        Log.Activated(_logger, slotName, _silo.SiloAddress);
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        foreach (ChangeSubscriber subscriber in _subscribers.Values)
        {
            await subscriber.DisposeAsync().ConfigureAwait(true);
        }

        _subscribers.Clear();
        await Task.WhenAll(_drops).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        if (_pump is { } pump)
        {
            _pump = null;
            await _engines.RemoveAndDisposeAsync(pump).ConfigureAwait(true);
        }

        Log.Deactivated(_logger, this.GetPrimaryKeyString(), reason.Description);
    }

    public Task<ReplicationStatus> GetStatus() => Task.FromResult(Pump.Status with { Silo = _silo.SiloAddress.ToParsableString() });

    public Task Pause()
    {
        Pump.Pause();
        return Task.CompletedTask;
    }

    public Task Resume()
    {
        Pump.Resume();
        return Task.CompletedTask;
    }

    public Task Subscribe(IChangeObserver observer) => SubscribeCoreAsync(observer, null);

    public Task SubscribeFromSnapshot(IChangeObserver observer, SnapshotRequest snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return SubscribeCoreAsync(observer, snapshot);
    }

    private async Task SubscribeCoreAsync(IChangeObserver observer, SnapshotRequest? snapshot)
    {
        ArgumentNullException.ThrowIfNull(observer);
        GrainId id = observer.GetGrainId();
        if (_subscribers.ContainsKey(id))
        {
            // Subscribing again (a client renewing after a failure it could not see) changes nothing: same stream position.
            return;
        }

        CheckSubscriberLimit();
        ReplicationPump pump = Pump;
        if (!pump.IsSlotReady)
        {
            // The subscriber's start is fixed only once the slot exists and the pump holds it: added before, a change
            // committed before the slot was created would be promised and never delivered. This call interleaves, so the
            // wait (slot creation waits for the primary's running transactions) does not hold the grain's turn.
            try
            {
                await pump.WaitForSlotAsync(_options.Replication.SubscribeTimeout).ConfigureAwait(true);
            }
            catch (ReplicationException e)
            {
                Log.SubscribeRefused(_logger, pump.Slot, id, e.Kind, e.Message);
                throw new ReplicationSlotUnavailableException(pump.Slot, e.Kind, e.Message);
            }
            catch (ObjectDisposedException)
            {
                throw new ReplicationSlotUnavailableException(pump.Slot, ReplicationErrorKind.ConnectionLost, "the grain is deactivating; subscribe again.");
            }

            // Other calls ran meanwhile: the same observer may have subscribed, the grain may be deactivating.
            if (!ReferenceEquals(_pump, pump))
            {
                throw new ReplicationSlotUnavailableException(pump.Slot, ReplicationErrorKind.ConnectionLost, "the grain is deactivating; subscribe again.");
            }

            if (_subscribers.ContainsKey(id))
            {
                return;
            }

            CheckSubscriberLimit();
        }

        var subscriber = new ChangeSubscriber(observer, _options.Replication.SubscriberTimeout, _time, OnUnreachable);
        // Reserved before the await, so that a renewal arriving meanwhile (this call interleaves) changes nothing.
        _subscribers[id] = subscriber;
        try
        {
            await subscriber.AttachAsync(pump, snapshot).ConfigureAwait(true);
        }
        catch (ArgumentException e)
        {
            _subscribers.Remove(id);
            Log.SubscribeRefused(_logger, pump.Slot, id, ReplicationErrorKind.Unexpected, e.Message);
            throw;
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException)
        {
            _subscribers.Remove(id);
            Log.SubscribeRefused(_logger, pump.Slot, id, ReplicationErrorKind.ConnectionLost, e.Message);
            string what = snapshot is null ? "the subscriber could not be recorded on the primary" : "the snapshot could not be taken, or the subscriber recorded, on the primary";
            throw new ReplicationSlotUnavailableException(pump.Slot, ReplicationErrorKind.ConnectionLost, $"{what} ({e.GetType().Name}: {e.Message}).");
        }

        UpdateKeepAlive();
        Log.Subscribed(_logger, pump.Slot, id, _subscribers.Count);
    }

    private void CheckSubscriberLimit()
    {
        if (_subscribers.Count >= _options.Replication.MaxSubscribers)
        {
            throw new LimitExceededException("OrleansLsn:Replication:MaxSubscribers", _options.Replication.MaxSubscribers, $"The replication grain of slot '{Pump.Slot}'", "subscribers");
        }
    }

    public async Task Unsubscribe(IChangeObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        GrainId id = observer.GetGrainId();
        if (_subscribers.Remove(id, out ChangeSubscriber? subscriber))
        {
            UpdateKeepAlive();
            await subscriber.DisposeAsync().ConfigureAwait(true);
            await ForgetAsync(subscriber).ConfigureAwait(true);
            Log.Unsubscribed(_logger, Pump.Slot, id, _subscribers.Count);
        }
    }

    /// <summary>Called by a subscriber's delivery loop (any thread); the drop runs on the grain's scheduler.</summary>
    private void OnUnreachable(ChangeSubscriber subscriber, string error)
    {
        _ = Task.Factory.StartNew(() => TrackDrop(DropAsync(subscriber, error)), CancellationToken.None, TaskCreationOptions.None, _scheduler);
    }

    private void TrackDrop(Task drop)
    {
        if (!drop.IsCompleted)
        {
            _drops.Add(drop);
            _ = drop.ContinueWith(t => _drops.Remove(t), CancellationToken.None, TaskContinuationOptions.None, _scheduler);
        }
    }

    private async Task DropAsync(ChangeSubscriber subscriber, string error)
    {
        GrainId id = subscriber.Observer.GetGrainId();
        if (!_subscribers.TryGetValue(id, out ChangeSubscriber? current) || !ReferenceEquals(current, subscriber))
        {
            return;
        }

        _subscribers.Remove(id);
        UpdateKeepAlive();
        Log.SubscriberDropped(_logger, Pump.Slot, id, _options.Replication.SubscriberTimeout.TotalSeconds, error);
        ReplicationMetrics.SubscribersDropped.Add(1, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, Pump.Slot));
        await subscriber.DisposeAsync().ConfigureAwait(true);
        await ForgetAsync(subscriber).ConfigureAwait(true);
    }

    /// <summary>Forgets a subscriber on the primary (best effort: left behind, the next activation waits for it once more).</summary>
    private async Task ForgetAsync(ChangeSubscriber subscriber)
    {
        if (_pump is not { } pump)
        {
            return;
        }

        try
        {
            await pump.ForgetSubscriberAsync(subscriber.Name).ConfigureAwait(true);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException)
        {
            Log.ForgetFailed(_logger, pump.Slot, subscriber.Observer.GetGrainId(), e.GetType().Name + ": " + e.Message);
        }
    }

    private void UpdateKeepAlive()
    {
        bool needed = _subscribers.Count > 0 || _slot is { AlwaysOn: true };
        if (needed != _keptAlive)
        {
            _keptAlive = needed;
            DelayDeactivation(needed ? Timeout.InfiniteTimeSpan : TimeSpan.Zero);
        }
    }
}
