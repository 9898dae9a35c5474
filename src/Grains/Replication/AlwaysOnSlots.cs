using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLsn.Hosting;

namespace OrleansLsn.Replication;

/// <summary>
/// Keeps the grains of slots marked <see cref="ReplicationSlotOptions.AlwaysOn"/> active: every silo calls each of them
/// every <see cref="ReplicationOptions.AlwaysOnCheckInterval"/> once it is active, so such a slot streams without a
/// subscriber and comes back on a surviving silo after the one hosting it died. A call that fails is logged and tried
/// again at the next check.
/// </summary>
internal sealed partial class AlwaysOnSlots(
    IGrainFactory grains,
    IOptions<OrleansLsnOptions> options,
    TimeProvider time,
    ILogger<AlwaysOnSlots> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(AlwaysOnSlots), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    private Task StartAsync(CancellationToken cancellationToken)
    {
        string[] slots = [.. options.Value.Replication.Slots.Where(s => s.AlwaysOn).Select(s => s.Name)];
        if (slots.Length > 0)
        {
            _loop = Task.Run(() => KeepAsync(slots, _stop.Token), CancellationToken.None);
        }

        return Task.CompletedTask;
    }

    private async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stop.Dispose();
    }

    private async Task KeepAsync(string[] slots, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Value.Replication.AlwaysOnCheckInterval, time);
        do
        {
            foreach (string slot in slots)
            {
                try
                {
                    await grains.GetGrain<IReplicationGrain>(slot).GetStatus().WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // A failed check (silo stopping, grain moving) is retried at the next tick.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Log.CheckFailed(logger, slot, e.GetType().Name + ": " + e.Message);
                }
            }
        }
        while (await NextTickAsync(timer, cancellationToken).ConfigureAwait(false));
    }

    private static async Task<bool> NextTickAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(2150, LogLevel.Warning, "Could not reach the always-on replication grain of slot {Slot}; trying again at the next check: {Error}")]
        internal static partial void CheckFailed(ILogger logger, string slot, string error);
    }
}
