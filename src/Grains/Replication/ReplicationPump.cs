using System.Globalization;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace OrleansLsn.Replication;

/// <summary>
/// Streams one logical replication slot (pgoutput) to subscribers, with backpressure, and acknowledges to PostgreSQL
/// only what every subscriber confirmed.
/// </summary>
/// <remarks>
/// <para>
/// One task owns the replication connection and its message enumerator. Between two messages it passes a gate: while a
/// manual pause or backpressure holds, it reads nothing, so the socket fills and PostgreSQL's walsender stops sending.
/// Npgsql's own timer keeps sending status updates meanwhile, at a third of the server's <c>wal_sender_timeout</c>, so
/// the connection survives any pause.
/// </para>
/// <para>
/// The flush position sent to PostgreSQL is the end of the last transaction every subscriber confirmed; when idle with
/// everything confirmed it also moves to keepalive positions, so that a quiet publication does not pin WAL. On any
/// connection failure the pump reconnects with exponential backoff and resumes from the slot's position.
/// </para>
/// </remarks>
public sealed partial class ReplicationPump : IAsyncDisposable
{
    private static readonly ReplicationPumpOptionsValidator Validator = new();

    private readonly ILogger _logger;
    private readonly string _adminConnectionString;
    private readonly string _replicationConnectionString;
    private readonly IReadOnlyList<PrimaryCandidate> _candidates;
    private readonly TransactionAssembler _assembler;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _pauseLock = new();
    private readonly object _flushLock = new();
    private readonly object _stateLock = new();
    private readonly List<ReplicationSubscription> _subscriptions = new();
    private readonly TaskCompletionSource _slotReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SubscriberRegistry? _registry;

    // Remembered subscribers of an earlier pump not back yet, each holding the backlog with a cursor of its own (under
    // _subscriptions' lock). Filled once, before the slot is reported ready, so before anyone can confirm anything.
    private readonly Dictionary<string, ChangeBacklog.Cursor> _awaited = new(StringComparer.Ordinal);
    private bool _registryLoaded;
    private Task? _rejoinExpiry;

    private Task? _loop;
    private bool _manualPause;
    private TaskCompletionSource? _resumed;
    private Session? _session;
    private volatile bool _idle = true;
    private ulong _flushed;
    private ulong _received;
    private ulong _serverLsn;
    private long _reconnects;
    private long _changesReported;
    private int _disposed;

    private ReplicationState _state = ReplicationState.Created;
    private ReplicationErrorKind _lastErrorKind;
    private string? _lastError;
    private DateTimeOffset? _lastErrorAt;
    private TimeSpan _statusInterval;

    // The outcome of the current connection attempt while the slot is not ready yet: null once it is ready, else the
    // attempt's failure. Replaced (under _stateLock) after each failure, so a waiter sees the next attempt's outcome.
    private TaskCompletionSource<ReplicationException?> _setupAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates a pump; nothing is sent to the server before <see cref="Start"/>.</summary>
    /// <exception cref="OptionsValidationException">The options are invalid (for example a slot or publication name PostgreSQL would not accept).</exception>
    public ReplicationPump(ReplicationPumpOptions options, ILogger<ReplicationPump>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ValidateOptionsResult validation = Validator.Validate(null, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(nameof(ReplicationPumpOptions), typeof(ReplicationPumpOptions), validation.Failures);
        }

        Options = options;
        _logger = logger ?? NullLogger<ReplicationPump>.Instance;
        Time = timeProvider ?? TimeProvider.System;
        Slot = options.SlotName;

        int timeoutSeconds = (int)Math.Ceiling(options.QueryTimeout.TotalSeconds);
        string applicationName = options.ApplicationName ?? $"orleanslsn-pump-{Slot}";
        if (applicationName.Length > PostgresIdentifiers.MaxLength)
        {
            applicationName = applicationName[..PostgresIdentifiers.MaxLength];
        }

        // The admin connection holds the slot's advisory lock, so it must really close (no pooling) when the pump stops.
        _adminConnectionString = new NpgsqlConnectionStringBuilder(options.ConnectionString)
        {
            Pooling = false,
            Timeout = timeoutSeconds,
            CommandTimeout = timeoutSeconds,
            ApplicationName = applicationName,
        }.ConnectionString;
        _replicationConnectionString = new NpgsqlConnectionStringBuilder(options.ConnectionString)
        {
            Timeout = timeoutSeconds,
            ApplicationName = applicationName,
        }.ConnectionString;

        _candidates = PrimaryCandidate.From(options, _adminConnectionString, _replicationConnectionString);
        _registry = options.RememberSubscribers ? new SubscriberRegistry() : null;
        Backlog = new ChangeBacklog(options, AdvanceFlush);
        _assembler = new TransactionAssembler(Slot, options, Backlog);
    }

    /// <summary>The slot this pump streams.</summary>
    public string Slot { get; }

    /// <summary>Why the pump is not reading, if it is not.</summary>
    public PauseReasons PauseReasons
    {
        get
        {
            bool manual;
            lock (_pauseLock)
            {
                manual = _manualPause;
            }

            return (manual ? PauseReasons.Manual : PauseReasons.None) | (Backlog.IsBackpressured ? PauseReasons.Backpressure : PauseReasons.None);
        }
    }

    /// <summary>The flush position reported to PostgreSQL.</summary>
    public Lsn FlushedLsn => new(Interlocked.Read(ref _flushed));

    /// <summary>The end of the last transaction every subscriber confirmed.</summary>
    public Lsn ConfirmedLsn => Backlog.ConfirmedLsn;

    /// <summary>A snapshot of the pump's state.</summary>
    public ReplicationStatus Status
    {
        get
        {
            Session? session = Volatile.Read(ref _session);
            if (session is not null)
            {
                NoteReceived(session);
            }

            ulong server = Interlocked.Read(ref _serverLsn);
            lock (_stateLock)
            {
                return new ReplicationStatus
                {
                    Slot = Slot,
                    State = _state,
                    ReceivedLsn = new Lsn(Interlocked.Read(ref _received)),
                    FlushedLsn = FlushedLsn,
                    ServerLsn = server == 0 ? null : new Lsn(server),
                    LagBytes = LagBytes,
                    PauseReasons = PauseReasons,
                    BacklogBytes = Backlog.Bytes,
                    BacklogBatches = Backlog.Count,
                    Subscribers = Backlog.Subscribers,
                    ReconnectCount = Interlocked.Read(ref _reconnects),
                    LastErrorKind = _lastErrorKind,
                    LastError = _lastError,
                    LastErrorAt = _lastErrorAt,
                    ServerPid = session?.Pid,
                    StatusInterval = _statusInterval,
                    ChangesReceived = _assembler.ChangesDecoded,
                    AwaitedSubscribers = AwaitedSubscribers,
                };
            }
        }
    }

    internal ReplicationPumpOptions Options { get; }

    internal TimeProvider Time { get; }

    internal ChangeBacklog Backlog { get; }

    internal long LagBytes
    {
        get
        {
            ulong server = Interlocked.Read(ref _serverLsn);
            ulong flushed = Interlocked.Read(ref _flushed);
            return server > flushed && flushed != 0 ? (long)(server - flushed) : 0;
        }
    }

    /// <summary>Starts the socket loop (idempotent). Failures are reported in <see cref="Status"/>, never thrown.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        lock (_stateLock)
        {
            if (_loop is not null)
            {
                return;
            }

            _state = ReplicationState.Connecting;
            ReplicationMetrics.Register(this);
            Log.Started(_logger, Slot, Options.PublicationName);
            _loop = Hosting.Untraced.Start(() => Task.Run(() => RunAsync(_stop.Token)));
        }
    }

    /// <summary>Stops reading from the server until <see cref="Resume"/>. The connection stays alive. Idempotent.</summary>
    public void Pause()
    {
        lock (_pauseLock)
        {
            if (_manualPause)
            {
                return;
            }

            _manualPause = true;
        }

        Log.Paused(_logger, Slot);
    }

    /// <summary>Lifts a manual pause (backpressure may still hold). Idempotent.</summary>
    public void Resume()
    {
        TaskCompletionSource? resumed;
        lock (_pauseLock)
        {
            if (!_manualPause)
            {
                return;
            }

            _manualPause = false;
            resumed = _resumed;
            _resumed = null;
        }

        resumed?.TrySetResult();
        Log.Resumed(_logger, Slot);
    }

    /// <summary>
    /// Adds a subscriber. It first gets the oldest batch not yet confirmed by every subscriber, then everything after,
    /// one batch at a time. Completing the returned task confirms a batch.
    /// </summary>
    public ReplicationSubscription Subscribe(Func<ChangeBatch, CancellationToken, Task> onChanges, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(onChanges);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ReplicationSubscription subscription;
        lock (_subscriptions)
        {
            subscription = new ReplicationSubscription(this, Backlog, name ?? $"subscriber-{_subscriptions.Count + 1}", onChanges);
            _subscriptions.Add(subscription);
        }

        // The slot was not created for a snapshot subscriber after all: stop holding it (and the primary's xmin) for one.
        if (TakeCreationSnapshot() is { } unused)
        {
            _ = ReleaseCreationSnapshotAsync(unused, "the first subscriber asked for no snapshot");
        }

        return subscription;
    }

    /// <summary>
    /// Subscribers of an earlier pump of this slot (remembered with <see cref="ReplicationPumpOptions.RememberSubscribers"/>)
    /// that have not subscribed again yet: the pump holds the slot for each until it is back or
    /// <see cref="ReplicationPumpOptions.RejoinTimeout"/> passed.
    /// </summary>
    public int AwaitedSubscribers
    {
        get
        {
            lock (_subscriptions)
            {
                return _awaited.Count;
            }
        }
    }

    /// <summary>
    /// Adds a subscriber as <see cref="Subscribe"/> does, under <paramref name="name"/>, and with
    /// <see cref="ReplicationPumpOptions.RememberSubscribers"/> remembers it on the primary before returning: a later pump of
    /// the slot (after this one's process died) then holds the slot for it until it subscribes again. A remembered
    /// subscriber of an earlier pump with this name stops being awaited. Call it once the slot is ready
    /// (<see cref="WaitForSlotAsync"/>).
    /// </summary>
    /// <exception cref="NpgsqlException">The primary could not record it; nothing was subscribed.</exception>
    public async Task<ReplicationSubscription> SubscribeAsync(Func<ChangeBatch, CancellationToken, Task> onChanges, string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        // The new subscriber's cursor starts where the awaited one stood (the backlog's head, held by it): release it.
        return await RememberAsync(Subscribe(onChanges, name), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Remembers <paramref name="subscription"/> on the primary (disposing it if that fails) and stops awaiting a
    /// remembered subscriber of an earlier pump with its name.
    /// </summary>
    private async Task<ReplicationSubscription> RememberAsync(ReplicationSubscription subscription, CancellationToken cancellationToken)
    {
        if (_registry is not null)
        {
            try
            {
                await _registry.AddAsync(Slot, subscription.Name, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await subscription.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        StopAwaiting(subscription.Name, rejoined: true);
        return subscription;
    }

    /// <summary>
    /// Forgets a subscriber remembered by <see cref="SubscribeAsync"/> (it unsubscribed, or was dropped): a later pump will
    /// not wait for it. Dispose its subscription too.
    /// </summary>
    public Task ForgetSubscriberAsync(string name, CancellationToken cancellationToken = default) =>
        _registry?.RemoveAsync(Slot, name, cancellationToken) ?? Task.CompletedTask;

    /// <summary>Whether the slot exists and this pump has held it once (see <see cref="WaitForSlotAsync"/>).</summary>
    public bool IsSlotReady => _slotReady.Task.IsCompleted;

    /// <summary>
    /// Waits until the slot exists (created if needed and allowed) and this pump has taken it: from then on every
    /// transaction that commits is decoded into the slot's stream after the position the pump streams from, so a
    /// subscriber added once this returns gets every change committed afterwards. Returns at once once that happened in
    /// this pump's life.
    /// </summary>
    /// <remarks>
    /// Creating a slot waits for the transactions running on the primary to end, so this can take as long as the
    /// longest of them. Failures that retrying may cure (connection lost, slot briefly held by another pump, anything
    /// unexpected) are waited through until <paramref name="timeout"/>; a failure that needs someone to act (publication
    /// or slot missing with creation off, missing rights, wrong server settings, invalidated slot) ends the wait at once.
    /// The pump itself keeps retrying either way.
    /// </remarks>
    /// <exception cref="ReplicationException">The slot is not ready: the kind and message say why (after the timeout,
    /// the last error, if any).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task WaitForSlotAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (_slotReady.Task.IsCompleted)
        {
            return;
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        long started = Time.GetTimestamp();
        while (true)
        {
            Task<ReplicationException?> attempt;
            lock (_stateLock)
            {
                if (_slotReady.Task.IsCompleted)
                {
                    return;
                }

                if (_state == ReplicationState.Failed)
                {
                    throw new ReplicationException(_lastErrorKind, _lastError ?? "the pump stopped for good.", isTerminal: true);
                }

                attempt = _setupAttempt.Task;
            }

            TimeSpan left = timeout - Time.GetElapsedTime(started);
            ReplicationException? failure;
            try
            {
                failure = left <= TimeSpan.Zero
                    ? throw new TimeoutException()
                    : await attempt.WaitAsync(left, Time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                ReplicationErrorKind kind;
                string? last;
                lock (_stateLock)
                {
                    kind = _lastErrorKind == ReplicationErrorKind.None ? ReplicationErrorKind.ConnectionLost : _lastErrorKind;
                    last = _lastError;
                }

                throw new ReplicationException(
                    kind,
                    $"replication slot \"{Slot}\" was not ready within {timeout.TotalSeconds:0.###} s ({(last is null ? "still connecting and preparing the slot; creating a slot waits for the transactions running on the primary" : "last error: " + last)}).");
            }

            if (failure is null)
            {
                return;
            }

            if (failure.IsTerminal || !IsRetriedWhileWaiting(failure.Kind))
            {
                throw new ReplicationException(failure.Kind, failure.Message, failure.IsTerminal);
            }
        }
    }

    /// <summary>Stops the pump: sends a last status update, closes the connections (releasing the slot), ends subscriptions.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Session? session = Volatile.Read(ref _session);
        if (session is not null)
        {
            // Best effort: tell the server the latest confirmed position before closing.
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await session.Connection.SendStatusUpdate(timeout.Token).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Shutting down; the position is sent again by the next pump anyway.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        if (_rejoinExpiry is not null)
        {
            await _rejoinExpiry.ConfigureAwait(false);
        }

        await ReleaseCreationSnapshotAsync(TakeCreationSnapshot(), "the pump stopped").ConfigureAwait(false);

        ReplicationSubscription[] subscriptions;
        lock (_subscriptions)
        {
            subscriptions = _subscriptions.ToArray();
        }

        foreach (ReplicationSubscription subscription in subscriptions)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }

        lock (_stateLock)
        {
            _setupAttempt.TrySetResult(new ReplicationException(ReplicationErrorKind.ConnectionLost, $"the pump of replication slot \"{Slot}\" stopped (its grain is deactivating)."));
        }

        SetState(ReplicationState.Stopped);
        ReplicationMetrics.Unregister(this);
        _stop.Dispose();
        Log.Stopped(_logger, Slot);
    }

    internal void Forget(ReplicationSubscription subscription)
    {
        lock (_subscriptions)
        {
            _subscriptions.Remove(subscription);
        }
    }

    internal void OnSubscriberFailed(ReplicationSubscription subscription, ChangeBatch batch, long failures, TimeSpan delay, Exception error)
    {
        string message = $"subscriber '{subscription.Name}' failed on batch {batch.CommitLsn}#{batch.Fragment}: {error.GetType().Name}: {error.Message}";
        RecordError(ReplicationErrorKind.SubscriberFailed, message);
        ReplicationMetrics.SubscriberFailures.Add(1, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, Slot));
        Log.SubscriberFailed(_logger, Slot, subscription.Name, failures, (long)delay.TotalMilliseconds, error);
    }

    private async Task RunAsync(CancellationToken stop)
    {
        TimeSpan delay = Options.ReconnectInitialDelay;
        while (!stop.IsCancellationRequested)
        {
            SetState(ReplicationState.Connecting);
            try
            {
                await RunSessionAsync(() => delay = Options.ReconnectInitialDelay, stop).ConfigureAwait(false);
            }
            catch (RewindRequestedException)
            {
                // A snapshot subscriber has its copy and needs the stream again from its hold: reconnect at once.
                Log.Rewinding(_logger, Slot, FlushedLsn.ToString());
                continue;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // Every failure is classified, reported and retried (or ends the pump if terminal).
            catch (Exception e)
#pragma warning restore CA1031
            {
                (ReplicationErrorKind kind, bool terminal) = Classify(e);
                string message = Describe(e);
                RecordError(kind, message);
                if (terminal)
                {
                    SetState(ReplicationState.Failed);
                    FailSetupAttempt(kind, message, terminal);
                    Log.Terminal(_logger, Slot, kind, message);
                    return;
                }

                FailSetupAttempt(kind, message, terminal);

                Interlocked.Increment(ref _reconnects);
                ReplicationMetrics.Reconnects.Add(1, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, Slot), new KeyValuePair<string, object?>("error.type", kind.ToString()));
                Log.ConnectionFailed(_logger, Slot, kind, (long)delay.TotalMilliseconds, message);
            }

            if (stop.IsCancellationRequested)
            {
                break;
            }

            SetState(ReplicationState.Reconnecting);
            try
            {
                await Task.Delay(delay, Time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, Options.ReconnectMaxDelay.Ticks));
        }
    }

    private async Task RunSessionAsync(Action streaming, CancellationToken stop)
    {
        using var sessionCts = CancellationTokenSource.CreateLinkedTokenSource(stop);
        CancellationToken token = sessionCts.Token;

        (NpgsqlConnection primary, string replicationConnectionString) = await OpenPrimaryAsync(token).ConfigureAwait(false);
        await using NpgsqlConnection admin = primary;
        SlotSetup.Result setup = await SlotSetup.PrepareAsync(
            admin,
            Options,
            replicationConnectionString,
            Options.CreatedSlotSnapshotLifetime > TimeSpan.Zero ? (id, consistent, t) => KeepCreationSnapshotAsync(replicationConnectionString, id, consistent, t) : null,
            token).ConfigureAwait(false);
        if (_registry is not null)
        {
            _registry.ConnectionString = replicationConnectionString;
            if (!_registryLoaded)
            {
                // Before the slot counts as ready: no subscriber can have confirmed anything yet.
                IReadOnlyList<string> remembered = await _registry.LoadAsync(admin, Slot, setup.CreatedSlotAt is not null, token).ConfigureAwait(false);
                _registryLoaded = true;
                HoldForRejoin(remembered);
                if (_registry.Unavailable is { } why)
                {
                    Log.SubscribersNotRemembered(_logger, Slot, why);
                }
            }
        }

        lock (_flushLock)
        {
            // Before the slot counts as ready: a snapshot subscriber's hold is read from here.
            _flushed = Math.Max(_flushed, setup.ConfirmedFlush.Value);
        }

        _primaryConnectionString = replicationConnectionString;
        MarkSlotReady();
        if (setup.CreatedPublication)
        {
            Log.PublicationCreated(_logger, Options.PublicationName, Options.PublicationTables.Count == 0 ? "all tables" : string.Join(", ", Options.PublicationTables));
        }

        if (setup.CreatedSlotAt is not null)
        {
            Log.SlotCreated(_logger, Slot, Options.Failover, setup.CreatedSlotAt);
        }

        await using var connection = new LogicalReplicationConnection(replicationConnectionString);
        await connection.Open(token).ConfigureAwait(false);
        TimeSpan senderTimeout = ParsePostgresDuration(await connection.Show("wal_sender_timeout", token).ConfigureAwait(false));
        TimeSpan statusInterval = StatusIntervalFor(senderTimeout, Options.MaxStatusInterval);
        connection.WalReceiverStatusInterval = statusInterval;
        // Npgsql asks the server for a keepalive after half of this without traffic, and gives up after all of it.
        connection.WalReceiverTimeout = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(10).Ticks, statusInterval.Ticks * 3));
        _outputSettings = await ReadOutputSettingsAsync(connection, token).ConfigureAwait(false);

        var session = new Session(connection, connection.ProcessID, sessionCts);
        Lsn start;
        lock (_flushLock)
        {
            // Resume from what this process confirmed if the server's slot is behind it (status not yet sent).
            ulong flushed = Math.Max(_flushed, setup.ConfirmedFlush.Value);
            _flushed = flushed;
            start = new Lsn(flushed);
            if (flushed != 0)
            {
                connection.SetReplicationStatus(new NpgsqlLogSequenceNumber(flushed));
            }

            Volatile.Write(ref _session, session);
        }

        lock (_stateLock)
        {
            _statusInterval = statusInterval;
        }

        _assembler.ResetSession();
        // Snapshot subscribers done copying start with this session's first entry; it streams from the flushed
        // position, which never passed their hold.
        if (Backlog.StartSession())
        {
            _assembler.ForgetAppended();
        }

        _idle = true;
        var slot = new PgOutputReplicationSlot(Slot);
        var replicationOptions = new PgOutputReplicationOptions(Options.PublicationName, setup.ProtocolVersion);
        IAsyncEnumerator<PgOutputReplicationMessage> messages = connection
            .StartReplication(slot, replicationOptions, token, start == Lsn.Invalid ? null : new NpgsqlLogSequenceNumber(start.Value))
            .GetAsyncEnumerator(token);
        Task monitor = MonitorAsync(admin, session, sessionCts);
        try
        {
            SetState(ReplicationState.Streaming);
            Log.Connected(_logger, Slot, session.Pid, (int)setup.ProtocolVersion, (long)statusInterval.TotalMilliseconds, start.ToString());
            bool first = true;
            while (true)
            {
                await WaitWhilePausedAsync(token).ConfigureAwait(false);
                if (!await messages.MoveNextAsync().ConfigureAwait(false))
                {
                    throw new ReplicationException(ReplicationErrorKind.ConnectionLost, "the server ended the replication stream.");
                }

                if (first)
                {
                    // The first message proves the slot accepted us; a later failure starts the backoff afresh.
                    first = false;
                    streaming();
                }

                // Values are read without a token of their own: the enumerator's token already aborts the connection's reads,
                // and registering one per value costs about 2% of the client's CPU.
                await HandleAsync(messages.Current).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested && session.Failure is not null)
        {
            throw session.Failure;
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested && session.Rewind)
        {
            throw new RewindRequestedException();
        }
        finally
        {
            NoteReceived(session);
            lock (_flushLock)
            {
                Volatile.Write(ref _session, null);
            }

            await sessionCts.CancelAsync().ConfigureAwait(false);
            await monitor.ConfigureAwait(false);
            try
            {
                await messages.DisposeAsync().ConfigureAwait(false);
            }
#pragma warning disable CA1031 // The connection is being abandoned; its own failure is already reported.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    /// <summary>
    /// Opens the admin connection on the primary: the connection string's server, or with several candidate hosts the
    /// first that answers and is not in recovery (after a promotion, the promoted standby). Returns the replication
    /// connection string pinned to the same server.
    /// </summary>
    private async Task<(NpgsqlConnection Admin, string ReplicationConnectionString)> OpenPrimaryAsync(CancellationToken token)
    {
        if (_candidates.Count == 0)
        {
            var single = new NpgsqlConnection(_adminConnectionString);
            try
            {
                await single.OpenAsync(token).ConfigureAwait(false);
                return (single, _replicationConnectionString);
            }
            catch
            {
                await single.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        var skipped = new List<string>();
        foreach (PrimaryCandidate candidate in _candidates)
        {
            var admin = new NpgsqlConnection(candidate.AdminConnectionString);
            bool chosen = false;
            try
            {
                await admin.OpenAsync(token).ConfigureAwait(false);
                await using var cmd = new NpgsqlCommand("SELECT pg_is_in_recovery()", admin);
                if (!(bool)(await cmd.ExecuteScalarAsync(token).ConfigureAwait(false))!)
                {
                    chosen = true;
                    Log.PrimaryChosen(_logger, Slot, candidate.Name, skipped.Count == 0 ? "none" : string.Join("; ", skipped));
                    return (admin, candidate.ReplicationConnectionString);
                }

                skipped.Add($"{candidate.Name}: in recovery (a standby)");
            }
            catch (Exception e) when (e is NpgsqlException or IOException or SocketException or TimeoutException
                || (e is OperationCanceledException && !token.IsCancellationRequested))
            {
                skipped.Add($"{candidate.Name}: {Describe(e)}");
            }
            finally
            {
                if (!chosen)
                {
                    await admin.DisposeAsync().ConfigureAwait(false);
                }
            }
        }

        throw new ReplicationException(
            ReplicationErrorKind.ConnectionLost,
            $"none of the {_candidates.Count} hosts is a reachable primary: {string.Join("; ", skipped)}.");
    }

    private async ValueTask HandleAsync(PgOutputReplicationMessage message)
    {
        switch (message)
        {
            case BeginMessage begin:
                _idle = false;
                _assembler.Begin(begin.TransactionXid, ToLsn(begin.TransactionFinalLsn), new DateTimeOffset(DateTime.SpecifyKind(begin.TransactionCommitTimestamp, DateTimeKind.Utc)));
                break;
            case RelationMessage relation:
                _assembler.Relation(relation);
                break;
            case InsertMessage insert:
                await _assembler.InsertAsync(insert).ConfigureAwait(false);
                break;
            case UpdateMessage update:
                await _assembler.UpdateAsync(update).ConfigureAwait(false);
                break;
            case DeleteMessage delete:
                await _assembler.DeleteAsync(delete).ConfigureAwait(false);
                break;
            case TruncateMessage truncate:
                _assembler.Truncate(truncate);
                break;
            case CommitMessage commit:
                _assembler.Commit(ToLsn(commit.CommitLsn), ToLsn(commit.TransactionEndLsn));
                _idle = true;
                long decoded = _assembler.ChangesDecoded;
                ReplicationMetrics.Changes.Add(decoded - _changesReported, new KeyValuePair<string, object?>(ReplicationMetrics.SlotTag, Slot));
                _changesReported = decoded;
                break;
            case StreamStartMessage or StreamStopMessage or StreamCommitMessage or StreamAbortMessage:
                // START_REPLICATION never asks for `streaming`, so the server spills a large transaction to disk and sends
                // it whole at commit. A stream message here would carry changes the assembler cannot place: fail loudly
                // rather than drop them.
                throw new ReplicationException(
                    ReplicationErrorKind.Unexpected,
                    $"the server sent {message.GetType().Name} (an in-progress transaction streamed), which the pump never asks for; its changes were not delivered.");
            default:
                // Type, origin and logical decoding messages (sent only when asked for, which the pump does not) carry nothing a subscriber needs.
                break;
        }

        RaiseReceived(ToLsn(message.WalEnd).Value);
    }

    private async ValueTask WaitWhilePausedAsync(CancellationToken token)
    {
        while (true)
        {
            Task? resumed = null;
            lock (_pauseLock)
            {
                if (_manualPause)
                {
                    _resumed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    resumed = _resumed.Task;
                }
            }

            if (resumed is not null)
            {
                await resumed.WaitAsync(token).ConfigureAwait(false);
                continue;
            }

            Task? relief = Backlog.CheckHighWater();
            if (relief is null)
            {
                return;
            }

            Log.BackpressureOn(_logger, Slot, Backlog.Bytes, Backlog.Count);
            await relief.WaitAsync(token).ConfigureAwait(false);
            Log.BackpressureOff(_logger, Slot, Backlog.Bytes, Backlog.Count);
        }
    }

    /// <summary>
    /// While streaming: probes the server's WAL position (lag), checks that the slot is still served by this
    /// connection's walsender (a connection killed while paused is otherwise noticed only on resume), keeps the
    /// advisory-lock connection alive, and acknowledges keepalive positions when idle.
    /// </summary>
    private async Task MonitorAsync(NpgsqlConnection admin, Session session, CancellationTokenSource sessionCts)
    {
        CancellationToken token = sessionCts.Token;
        int mismatches = 0;
        try
        {
            using var timer = new PeriodicTimer(Options.MonitorInterval, Time);
            await using var probe = new NpgsqlCommand(
                "SELECT pg_current_wal_lsn()::text, s.active_pid, s.wal_status FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots AS s ON s.slot_name = $1", admin);
            probe.Parameters.Add(new NpgsqlParameter { Value = Slot });
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
            {
                NoteReceived(session);
                TryAcknowledgeIdle(session);
                await using NpgsqlDataReader reader = await probe.ExecuteReaderAsync(token).ConfigureAwait(false);
                await reader.ReadAsync(token).ConfigureAwait(false);
                ulong server = Lsn.Parse(reader.GetString(0)).Value;
                int? active = reader.IsDBNull(1) ? null : reader.GetInt32(1);
                string? walStatus = reader.IsDBNull(2) ? null : reader.GetString(2);
                Interlocked.Exchange(ref _serverLsn, server);
                if (walStatus is "unreserved" or "lost" && PauseReasons != PauseReasons.None)
                {
                    // The server is removing the WAL this slot needs and will terminate our walsender to invalidate it.
                    // A walsender blocked writing to a paused client cannot even send its termination error, and the
                    // checkpointer waits for it (seen on PostgreSQL 15): close our end so that the server can proceed.
                    Log.SlotLosingWal(_logger, Slot, walStatus);
                    session.Failure = new ReplicationException(
                        ReplicationErrorKind.ConnectionLost,
                        $"replication slot \"{Slot}\" is losing its WAL (wal_status '{walStatus}', max_slot_wal_keep_size) while the pump is paused; closed the connection so that the server can proceed.");
                    await sessionCts.CancelAsync().ConfigureAwait(false);
                    return;
                }

                mismatches = active == session.Pid ? 0 : mismatches + 1;
                if (mismatches >= 2)
                {
                    Log.WalsenderGone(_logger, Slot, session.Pid, active?.ToString(CultureInfo.InvariantCulture) ?? "none");
                    session.Failure = new ReplicationException(
                        ReplicationErrorKind.ConnectionLost,
                        $"walsender {session.Pid} no longer serves slot \"{Slot}\" (active PID: {active?.ToString(CultureInfo.InvariantCulture) ?? "none"}).");
                    await sessionCts.CancelAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
#pragma warning disable CA1031 // A failed probe means the admin connection (and its advisory lock) is gone: end the session.
        catch (Exception e)
#pragma warning restore CA1031
        {
            session.Failure = e is ReplicationException ? e : new ReplicationException(ReplicationErrorKind.ConnectionLost, "the monitoring connection failed: " + Describe(e), false, e);
            await sessionCts.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Acknowledges the last received position (a keepalive's) when nothing is pending: no transaction is being read
    /// and every batch handed to the backlog is confirmed. Npgsql moves the received position only while the socket
    /// loop reads, and at most one unhandled message ahead of it; that message can only be a transaction's begin, whose
    /// position is before its commit, so acknowledging it never skips the transaction.
    /// </summary>
    private void TryAcknowledgeIdle(Session session)
    {
        if (!_idle || !Backlog.IsDrained(out long appended))
        {
            return;
        }

        ulong received = (ulong)session.Connection.LastReceivedLsn;
        if (!_idle || Backlog.LastAppendedSeq != appended)
        {
            return;
        }

        AdvanceFlush(new Lsn(received));
    }

    private void AdvanceFlush(Lsn lsn)
    {
        lock (_flushLock)
        {
            // A snapshot subscriber's hold caps it (its stream starts again from there).
            if (Backlog.LowestHold is Lsn hold && lsn > hold)
            {
                lsn = hold;
            }

            if (lsn.Value <= _flushed)
            {
                return;
            }

            _flushed = lsn.Value;
            Volatile.Read(ref _session)?.Connection.SetReplicationStatus(new NpgsqlLogSequenceNumber(lsn.Value));
        }
    }

    private void NoteReceived(Session session) => RaiseReceived((ulong)session.Connection.LastReceivedLsn);

    private void RaiseReceived(ulong received)
    {
        ulong current = Interlocked.Read(ref _received);
        while (received > current)
        {
            ulong seen = Interlocked.CompareExchange(ref _received, received, current);
            if (seen == current)
            {
                break;
            }

            current = seen;
        }
    }

    private void HoldForRejoin(IReadOnlyList<string> remembered)
    {
        lock (_subscriptions)
        {
            foreach (string name in remembered)
            {
                if (!_awaited.ContainsKey(name) && !_subscriptions.Any(s => s.Name == name))
                {
                    _awaited[name] = Backlog.AddCursor();
                }
            }

            if (_awaited.Count == 0)
            {
                return;
            }

            Log.AwaitingSubscribers(_logger, Slot, _awaited.Count, (long)Options.RejoinTimeout.TotalMilliseconds);
            _rejoinExpiry = ExpireAwaitedAsync(_stop.Token);
        }
    }

    /// <summary>After the rejoin timeout, the subscribers still not back stop holding the slot and are forgotten.</summary>
    private async Task ExpireAwaitedAsync(CancellationToken stop)
    {
        try
        {
            await Task.Delay(Options.RejoinTimeout, Time, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        string[] late;
        lock (_subscriptions)
        {
            late = [.. _awaited.Keys];
        }

        foreach (string name in late)
        {
            if (StopAwaiting(name, rejoined: false))
            {
                try
                {
                    await ForgetSubscriberAsync(name, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // The row is only a hint: left behind, the next pump waits for it once more, then forgets it.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Log.ForgetFailed(_logger, Slot, name, Describe(e));
                }
            }
        }
    }

    /// <summary>Removes the cursor an awaited subscriber held; returns whether it was awaited.</summary>
    private bool StopAwaiting(string name, bool rejoined)
    {
        ChangeBacklog.Cursor? cursor;
        lock (_subscriptions)
        {
            if (!_awaited.Remove(name, out cursor))
            {
                return false;
            }
        }

        Backlog.RemoveCursor(cursor);
        if (rejoined)
        {
            Log.SubscriberRejoined(_logger, Slot, name);
        }
        else
        {
            Log.SubscriberDidNotRejoin(_logger, Slot, name, (long)Options.RejoinTimeout.TotalMilliseconds);
        }

        return true;
    }

    private void MarkSlotReady()
    {
        if (_slotReady.TrySetResult())
        {
            lock (_stateLock)
            {
                _setupAttempt.TrySetResult(null);
            }
        }
    }

    private void FailSetupAttempt(ReplicationErrorKind kind, string message, bool terminal)
    {
        TaskCompletionSource<ReplicationException?> failed;
        lock (_stateLock)
        {
            if (_slotReady.Task.IsCompleted)
            {
                return;
            }

            failed = _setupAttempt;
            _setupAttempt = new TaskCompletionSource<ReplicationException?>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        failed.TrySetResult(new ReplicationException(kind, message, terminal));
    }

    /// <summary>Failures a <see cref="WaitForSlotAsync"/> waits through: the pump's next attempt may well succeed.</summary>
    private static bool IsRetriedWhileWaiting(ReplicationErrorKind kind) =>
        kind is ReplicationErrorKind.ConnectionLost or ReplicationErrorKind.SlotInUse or ReplicationErrorKind.Unexpected;

    private void SetState(ReplicationState state)
    {
        lock (_stateLock)
        {
            if (_state != ReplicationState.Failed || state == ReplicationState.Stopped)
            {
                _state = state;
            }
        }
    }

    private void RecordError(ReplicationErrorKind kind, string message)
    {
        lock (_stateLock)
        {
            _lastErrorKind = kind;
            _lastError = message;
            _lastErrorAt = Time.GetUtcNow();
        }
    }

    private static Lsn ToLsn(NpgsqlLogSequenceNumber lsn) => new((ulong)lsn);

    internal static (ReplicationErrorKind Kind, bool Terminal) Classify(Exception e) => e switch
    {
        ReplicationException r => (r.Kind, r.IsTerminal),
        PostgresException { SqlState: PostgresErrorCodes.ObjectInUse } => (ReplicationErrorKind.SlotInUse, false),
        PostgresException { SqlState: PostgresErrorCodes.ObjectNotInPrerequisiteState } p
            when (p.Detail ?? "").Contains("invalidated", StringComparison.OrdinalIgnoreCase)
              || p.MessageText.Contains("invalidated", StringComparison.OrdinalIgnoreCase) => (ReplicationErrorKind.SlotInvalidated, true),
        PostgresException { SqlState: PostgresErrorCodes.UndefinedObject } p
            when p.MessageText.Contains("publication", StringComparison.OrdinalIgnoreCase) => (ReplicationErrorKind.PublicationMissing, false),
        PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege } => (ReplicationErrorKind.PermissionDenied, false),
        PostgresException p when p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("57", StringComparison.Ordinal)
            => (ReplicationErrorKind.ConnectionLost, false),
        PostgresException => (ReplicationErrorKind.Unexpected, false),
        // Npgsql 10.0.0 can surface a connection the server dropped as a NullReferenceException from its reader.
        NullReferenceException or NpgsqlException or IOException or SocketException or TimeoutException or ObjectDisposedException or OperationCanceledException
            => (ReplicationErrorKind.ConnectionLost, false),
        _ => (ReplicationErrorKind.Unexpected, false),
    };

    // Type and message only: connection strings (and so passwords) never reach logs or the status.
    private static string Describe(Exception e) => e switch
    {
        ReplicationException r => r.Message,
        PostgresException p => $"{p.SqlState}: {p.MessageText}{(p.Detail is null ? "" : " (" + p.Detail + ")")}",
        NullReferenceException => "connection lost (Npgsql reader failed after the server closed the connection)",
        _ => e.GetType().Name + ": " + e.Message,
    };

    /// <summary>A third of the server's <c>wal_sender_timeout</c>, at least 100 ms, capped by <paramref name="max"/> (also when the timeout is off).</summary>
    internal static TimeSpan StatusIntervalFor(TimeSpan walSenderTimeout, TimeSpan max)
    {
        if (walSenderTimeout <= TimeSpan.Zero)
        {
            return max;
        }

        TimeSpan third = walSenderTimeout / 3;
        return third > max ? max : third < TimeSpan.FromMilliseconds(100) ? TimeSpan.FromMilliseconds(100) : third;
    }

    /// <summary>Parses a duration as <c>SHOW</c> prints it (<c>60s</c>, <c>1min</c>, <c>500ms</c>, <c>0</c>); no unit means milliseconds.</summary>
    internal static TimeSpan ParsePostgresDuration(string text)
    {
        string s = text.Trim();
        int split = 0;
        while (split < s.Length && (char.IsAsciiDigit(s[split]) || s[split] == '.' || s[split] == '-'))
        {
            split++;
        }

        if (split == 0 || !double.TryParse(s.AsSpan(0, split), NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
        {
            throw new FormatException($"Cannot read the duration '{text}'.");
        }

        return s[split..].Trim() switch
        {
            "" or "ms" => TimeSpan.FromMilliseconds(value),
            "us" => TimeSpan.FromMicroseconds(value),
            "s" => TimeSpan.FromSeconds(value),
            "min" => TimeSpan.FromMinutes(value),
            "h" => TimeSpan.FromHours(value),
            "d" => TimeSpan.FromDays(value),
            string unit => throw new FormatException($"Unknown unit '{unit}' in the duration '{text}'."),
        };
    }

    private sealed class Session(LogicalReplicationConnection connection, int pid, CancellationTokenSource cancellation)
    {
        internal LogicalReplicationConnection Connection { get; } = connection;

        internal int Pid { get; } = pid;

        internal CancellationTokenSource Cancellation { get; } = cancellation;

        internal Exception? Failure { get; set; }

        /// <summary>Set when the session ends because a snapshot subscriber needs the stream again (not a failure).</summary>
        internal volatile bool Rewind;
    }

    private sealed class RewindRequestedException : Exception
    {
    }
}
