using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime.Messaging;

namespace OrleansLsn.Runtime;

/// <summary>
/// The silo's activations: at most one per grain id. Creates an activation on the first request, hands requests
/// to it, and deactivates idle ones every collection quantum.
/// </summary>
internal sealed partial class Catalog : IDisposable
{
    private readonly ConcurrentDictionary<GrainId, ActivationData> _activations = new();
    private readonly SiloRuntime _runtime;
    private readonly ILogger _logger;
    private readonly ITimer _collector;

    public Catalog(SiloRuntime runtime, ILogger logger)
    {
        _runtime = runtime;
        _logger = logger;
        TimeSpan quantum = runtime.Collection.CollectionQuantum;
        _collector = runtime.TimeProvider.CreateTimer(static s => ((Catalog)s!).CollectIdle(), this, quantum, quantum);
    }

    public int Count => _activations.Count;

    public bool TryGet(GrainId grainId, out ActivationData activation) => _activations.TryGetValue(grainId, out activation!);

    public void Dispatch(IncomingCall call, GrainClass grainClass)
    {
        var grainId = new GrainId(grainClass.TypeName, call.Request.Target.Key);
        while (true)
        {
            if (!_activations.TryGetValue(grainId, out ActivationData? activation))
            {
                activation = _activations.GetOrAdd(
                    grainId,
                    static (id, state) => new ActivationData(id, state.Class, state.Catalog._runtime, state.Catalog, state.Catalog._logger),
                    (Class: grainClass, Catalog: this));
            }

            if (activation.TryEnqueue(call))
            {
                return;
            }

            // The activation just went away; drop it from the map (if still there) and make a new one.
            _activations.TryRemove(new KeyValuePair<GrainId, ActivationData>(grainId, activation));
        }
    }

    /// <summary>A request that was queued on an activation that deactivated goes to a new activation.</summary>
    public void Redispatch(IncomingCall call, GrainClass grainClass) => Dispatch(call, grainClass);

    public void Remove(ActivationData activation) =>
        _activations.TryRemove(new KeyValuePair<GrainId, ActivationData>(activation.GrainId, activation));

    /// <summary>Deactivates idle activations now (the collector calls this every quantum).</summary>
    public int CollectIdle()
    {
        long now = Stopwatch.GetTimestamp();
        int count = 0;
        foreach (ActivationData activation in _activations.Values)
        {
            if (activation.IsIdleLongerThan(_runtime.Collection.CollectionAge, now))
            {
                activation.StartDeactivation(new DeactivationReason(DeactivationReasonCode.ActivationIdle, $"Idle for longer than {_runtime.Collection.CollectionAge}."));
                count++;
            }
        }

        if (count > 0)
        {
            LogCollected(_logger, count);
        }

        return count;
    }

    /// <summary>Deactivates everything (silo shutdown), waiting until the token fires.</summary>
    public async Task DeactivateAllAsync(CancellationToken cancellationToken)
    {
        _collector.Dispose();
        var reason = new DeactivationReason(DeactivationReasonCode.ShuttingDown, "The silo is shutting down.");
        var waits = new List<Task>();
        foreach (ActivationData activation in _activations.Values)
        {
            activation.StartDeactivation(reason);
            waits.Add(activation.Deactivated);
        }

        try
        {
            await Task.WhenAll(waits).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            LogShutdownIncomplete(_logger, waits.Count(t => !t.IsCompleted));
        }
    }

    public void Dispose() => _collector.Dispose();

    [LoggerMessage(EventId = 3210, Level = LogLevel.Debug, Message = "Deactivating {Count} idle activations")]
    private static partial void LogCollected(ILogger logger, int count);

    [LoggerMessage(EventId = 3211, Level = LogLevel.Warning, Message = "{Count} activations did not deactivate before the shutdown deadline")]
    private static partial void LogShutdownIncomplete(ILogger logger, int count);
}
