using System.Diagnostics;

namespace OrleansLsn.Replication;

/// <summary>
/// One subscriber of a <see cref="ReplicationPump"/>. It receives every batch in order, one at a time; completing the
/// task returned by the callback confirms the batch. A callback that throws gets the same batch again after a backoff.
/// Dispose to unsubscribe: what it has not confirmed then no longer holds back acknowledgement.
/// </summary>
public sealed class ReplicationSubscription : IAsyncDisposable
{
    private readonly ReplicationPump _pump;
    private readonly ChangeBacklog _backlog;
    private readonly ChangeBacklog.Cursor _cursor;
    private readonly Func<ChangeBatch, CancellationToken, Task> _onChanges;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _delivered;
    private long _failures;
    private string? _lastError;
    private int _disposed;

    internal ReplicationSubscription(ReplicationPump pump, ChangeBacklog backlog, string name, Func<ChangeBatch, CancellationToken, Task> onChanges)
    {
        _pump = pump;
        _backlog = backlog;
        _onChanges = onChanges;
        Name = name;
        _cursor = backlog.AddCursor();
        _loop = Hosting.Untraced.Start(() => Task.Run(() => DeliverAsync(_stop.Token)));
    }

    /// <summary>The name given at subscription, used in logs.</summary>
    public string Name { get; }

    /// <summary>Batches this subscriber confirmed.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Deliveries that threw (each is retried).</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>The last exception the callback threw (type and message), or <see langword="null"/>.</summary>
    public string? LastError => Volatile.Read(ref _lastError);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _backlog.RemoveCursor(_cursor);
        _pump.Forget(this);
        _stop.Dispose();
    }

    private async Task DeliverAsync(CancellationToken cancellationToken)
    {
        ReplicationPumpOptions options = _pump.Options;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                ChangeBacklog.Entry entry = await _backlog.NextAsync(_cursor, cancellationToken).ConfigureAwait(false);
                if (entry.Batch is not null)
                {
                    TimeSpan delay = options.SubscriberRetryInitialDelay;
                    long started = Stopwatch.GetTimestamp();
                    while (true)
                    {
                        try
                        {
                            await _onChanges(entry.Batch, cancellationToken).ConfigureAwait(false);
                            break;
                        }
                        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                        {
                            return;
                        }
#pragma warning disable CA1031 // A subscriber's failure must not end delivery; it is recorded and retried.
                        catch (Exception e)
#pragma warning restore CA1031
                        {
                            long failures = Interlocked.Increment(ref _failures);
                            Volatile.Write(ref _lastError, e.GetType().Name + ": " + e.Message);
                            _pump.OnSubscriberFailed(this, entry.Batch, failures, delay, e);
                            await Task.Delay(delay, _pump.Time, cancellationToken).ConfigureAwait(false);
                            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, options.SubscriberRetryMaxDelay.Ticks));
                        }
                    }

                    Interlocked.Increment(ref _delivered);
                    ReplicationMetrics.Batches.Add(1, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, _pump.Slot));
                    ReplicationMetrics.DeliveryDuration.Record(
                        Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, _pump.Slot));
                }

                _backlog.Confirm(_cursor, entry.Seq);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
