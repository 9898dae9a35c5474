using System.Diagnostics;
using OrleansLsn.Replication;

namespace OrleansLsn.Bench.Replication;

/// <summary>Waits on a pump with a deadline, failing at once if the pump has failed, and saying what it was doing on timeout.</summary>
internal static class PumpWait
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Waits until <paramref name="done"/> completes.</summary>
    /// <exception cref="InvalidOperationException">The pump failed (terminal error).</exception>
    /// <exception cref="TimeoutException"><paramref name="done"/> did not complete within <paramref name="timeout"/>.</exception>
    public static async Task ForAsync(ReplicationPump pump, Task done, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        while (!done.IsCompleted)
        {
            Check(pump, start, timeout, what);
            await Task.WhenAny(done, Task.Delay(PollInterval, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }

        await done.ConfigureAwait(false);
    }

    /// <summary>Waits until <paramref name="condition"/> holds.</summary>
    /// <exception cref="InvalidOperationException">The pump failed (terminal error).</exception>
    /// <exception cref="TimeoutException">The condition did not hold within <paramref name="timeout"/>.</exception>
    public static async Task UntilAsync(ReplicationPump pump, Func<bool> condition, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        while (!condition())
        {
            Check(pump, start, timeout, what);
            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until the pump streams and its walsender is known.</summary>
    public static Task StreamingAsync(ReplicationPump pump, CancellationToken cancellationToken) =>
        UntilAsync(
            pump,
            () => pump.Status is { State: ReplicationState.Streaming, ServerPid: not null },
            TimeSpan.FromSeconds(30),
            $"pump on slot {pump.Slot} to stream",
            cancellationToken);

    /// <summary>The pump's state in one line, for failure messages.</summary>
    public static string Describe(ReplicationStatus s) =>
        $"state {s.State}, walsender {s.ServerPid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, " +
        $"changes received {s.ChangesReceived}, received {s.ReceivedLsn}, flushed {s.FlushedLsn}, backlog {s.BacklogBatches} batches / {s.BacklogBytes} B, " +
        $"pause {s.PauseReasons}, reconnects {s.ReconnectCount}, last error {s.LastErrorKind}: {s.LastError ?? "none"}";

    private static void Check(ReplicationPump pump, long start, TimeSpan timeout, string what)
    {
        ReplicationStatus status = pump.Status;
        if (status.State == ReplicationState.Failed)
        {
            throw new InvalidOperationException($"The pump failed while waiting for {what}: {Describe(status)}.");
        }

        if (Stopwatch.GetElapsedTime(start) > timeout)
        {
            throw new TimeoutException($"Waited {timeout.TotalSeconds:0.#} s for {what}; pump: {Describe(status)}.");
        }
    }
}
