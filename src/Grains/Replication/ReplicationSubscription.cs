using System.Diagnostics;
using OrleansLsn.Replication.Snapshot;

namespace OrleansLsn.Replication;

/// <summary>
/// One subscriber of a <see cref="ReplicationPump"/>. It receives every batch in order, one at a time; completing the
/// task returned by the callback confirms the batch. A callback that throws gets the same batch again after a backoff.
/// Dispose to unsubscribe: what it has not confirmed then no longer holds back acknowledgement.
/// <para>
/// A subscriber that asked for a snapshot (<see cref="ReplicationPump.SubscribeFromSnapshotAsync"/>) first gets the
/// copy's batches, then the stream from the position held for it, without the transactions the snapshot holds.
/// Any subscriber skips a transaction the stream sends again (after a reconnect) once it has confirmed it.
/// </para>
/// </summary>
public sealed class ReplicationSubscription : IAsyncDisposable
{
    private readonly ReplicationPump _pump;
    private readonly ChangeBacklog _backlog;
    private readonly ChangeBacklog.Cursor _cursor;
    private readonly Func<ChangeBatch, CancellationToken, Task> _onChanges;
    private readonly CancellationTokenSource _stop = new();
    private readonly SubscriberSnapshot? _snapshot;
    private readonly Action<string>? _onSnapshotFailed;
    private readonly Task _loop;
    private long _delivered;
    private long _failures;
    private long _skipped;
    private long _skippedAsCopied;
    private string? _lastError;
    private int _disposed;

    internal ReplicationSubscription(ReplicationPump pump, ChangeBacklog backlog, string name, Func<ChangeBatch, CancellationToken, Task> onChanges)
        : this(pump, backlog, name, onChanges, backlog.AddCursor(), null, null)
    {
    }

    /// <summary>A subscriber on <paramref name="cursor"/>; with <paramref name="snapshot"/>, the cursor is parked on its hold.</summary>
    internal ReplicationSubscription(
        ReplicationPump pump,
        ChangeBacklog backlog,
        string name,
        Func<ChangeBatch, CancellationToken, Task> onChanges,
        ChangeBacklog.Cursor cursor,
        SubscriberSnapshot? snapshot,
        Action<string>? onSnapshotFailed)
    {
        _pump = pump;
        _backlog = backlog;
        _onChanges = onChanges;
        Name = name;
        _cursor = cursor;
        _snapshot = snapshot;
        _onSnapshotFailed = onSnapshotFailed;
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

    /// <summary>Stream batches not delivered because the subscriber had them already (in its snapshot, or confirmed before a reconnect).</summary>
    public long Skipped => Interlocked.Read(ref _skipped);

    /// <summary>Of <see cref="Skipped"/>, those whose transaction the subscriber's snapshot holds (the cut's filter).</summary>
    public long SkippedAsCopied => Interlocked.Read(ref _skippedAsCopied);

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
        if (_snapshot is not null)
        {
            await _snapshot.DisposeAsync().ConfigureAwait(false);
        }

        _pump.Forget(this);
        _stop.Dispose();
    }

    private async Task DeliverAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (_snapshot is not null && !await CopyAsync(_snapshot, cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            PgSnapshot? cut = _snapshot?.Cut;
            while (!cancellationToken.IsCancellationRequested)
            {
                ChangeBacklog.Entry entry = await _backlog.NextAsync(_cursor, cancellationToken).ConfigureAwait(false);
                if (entry.Batch is { } batch)
                {
                    if (batch.CommitLsn < _cursor.SkipBelow
                        || (batch.CommitLsn == _cursor.PartialCommitLsn && batch.Fragment <= _cursor.PartialFragment))
                    {
                        Interlocked.Increment(ref _skipped);
                    }
                    else if (cut is not null && cut.SkipInStream(batch.Xid))
                    {
                        Interlocked.Increment(ref _skipped);
                        Interlocked.Increment(ref _skippedAsCopied);
                    }
                    else if (!await DeliverOneAsync(batch, cancellationToken).ConfigureAwait(false))
                    {
                        return;
                    }

                    if (!batch.IsLastFragment)
                    {
                        int before = batch.CommitLsn == _cursor.PartialCommitLsn ? _cursor.PartialFragment : -1;
                        _cursor.PartialCommitLsn = batch.CommitLsn;
                        _cursor.PartialFragment = Math.Max(batch.Fragment, before);
                    }
                }

                if (entry.EndLsn != Lsn.Invalid && entry.EndLsn > _cursor.SkipBelow)
                {
                    _cursor.SkipBelow = entry.EndLsn;
                }

                _backlog.Confirm(_cursor, entry.Seq);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Delivers the snapshot's batches, one chunk read per confirmed batch, then lets the cursor join the stream.
    /// Returns false when delivery must stop (cancelled, or the copy failed: the owner is told).
    /// </summary>
    private async Task<bool> CopyAsync(SubscriberSnapshot snapshot, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        long rows = 0;
        long batches = 0;
        IAsyncEnumerator<ChangeBatch> copy = snapshot.BatchesAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await copy.MoveNextAsync().ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return false;
                }
#pragma warning disable CA1031 // The copy's read failed (the primary went away, the read was cancelled by the server): reported, the subscriber dropped.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Volatile.Write(ref _lastError, e.GetType().Name + ": " + e.Message);
                    _pump.OnSnapshotFailed(this, rows, e);
                    _onSnapshotFailed?.Invoke(e.GetType().Name + ": " + e.Message);
                    return false;
                }

                if (!more)
                {
                    break;
                }

                if (!await DeliverOneAsync(copy.Current, cancellationToken).ConfigureAwait(false))
                {
                    return false;
                }

                rows += copy.Current.Changes.Count;
                batches++;
            }
        }
        finally
        {
            await copy.DisposeAsync().ConfigureAwait(false);
            await snapshot.DisposeAsync().ConfigureAwait(false);
        }

        _pump.OnSnapshotCopied(this, rows, batches, Stopwatch.GetElapsedTime(started), snapshot.Hold);
        if (!_backlog.Unpark(_cursor))
        {
            // The stream moved on while the copy was read: the pump streams again from the hold for this cursor.
            _pump.RequestRewind();
        }

        return true;
    }

    /// <summary>Calls the subscriber until it confirms <paramref name="batch"/>, with backoff; false when cancelled.</summary>
    private async Task<bool> DeliverOneAsync(ChangeBatch batch, CancellationToken cancellationToken)
    {
        ReplicationPumpOptions options = _pump.Options;
        TimeSpan delay = options.SubscriberRetryInitialDelay;
        long started = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                await _onChanges(batch, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
#pragma warning disable CA1031 // A subscriber's failure must not end delivery; it is recorded and retried.
            catch (Exception e)
#pragma warning restore CA1031
            {
                long failures = Interlocked.Increment(ref _failures);
                Volatile.Write(ref _lastError, e.GetType().Name + ": " + e.Message);
                _pump.OnSubscriberFailed(this, batch, failures, delay, e);
                await Task.Delay(delay, _pump.Time, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, options.SubscriberRetryMaxDelay.Ticks));
            }
        }

        Interlocked.Increment(ref _delivered);
        ReplicationMetrics.Batches.Add(1, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, _pump.Slot));
        ReplicationMetrics.DeliveryDuration.Record(
            Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, _pump.Slot));
        return true;
    }
}
