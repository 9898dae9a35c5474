using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using OrleansLsn.Client;
using OrleansLsn.Hosting;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// A client loses its only gateway while <see cref="ReplayView"/> waits are pending. The shared cluster's silos talk
/// over Orleans' in-memory transport, so this test starts a silo of its own over real TCP (localhost clustering, region
/// us-east, watching the second standby) and a separate ordinary Orleans client whose only gateway is a
/// <see cref="TcpFaultProxy"/> in front of the silo's gateway. The cut is <see cref="TcpFaultProxy.Freeze"/> then
/// <see cref="TcpFaultProxy.DropConnections"/>: open connections are reset and reconnects reach nothing. Every wait is
/// answered exactly once: timed out at its timeout while the gateway stays lost, Ready (with the row on the replica) once
/// it is back, none before, none hanging. Pauses replay on the second standby (always resumed in <c>finally</c>), so it
/// runs alone with the other tests that pause standbys.
/// </summary>
[Collection(StandbyControlCollection.Name)]
public sealed class ReplayViewGatewayLostTests(PostgresFixture postgres)
{
    private const int Waits = 1_000;
    private const string Region = LsnTestCluster.UsEast;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GatewayLostLongerThanTheTimeout_EveryPendingWaitTimesOutAtItsTimeout_NoneReadyNoneHangs()
    {
        TimeSpan timeout = TimeSpan.FromSeconds(3);
        await using GatewayRig rig = await GatewayRig.StartAsync(postgres, Ct);
        ReplayView view = rig.Views.Get(Region);
        string table = await CreateTableAsync("gw_lost_timeout");
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await ReadyBeforeTheFaultAsync(rig, view, primary);

        await ReplicaControl.PauseReplayAsync(postgres.Standby2ConnectionString, Ct);
        try
        {
            Lsn written = await InsertAsync(primary, table, 1);
            using var outcomes = new ViewOutcomes();
            List<Task<WaitRecord>> waits = StartWaits(view, written, timeout, onReady: null);
            await AssertPendingWithDemandAsync(rig, view, waits, "before the cut");

            Counters atCut = Counters.Of(view);
            rig.CutGateway();
            WaitRecord[] results = await Wait.ForAsync(Task.WhenAll(waits), timeout + Deadline, "every wait to end with the gateway lost");

            // The view counts a batch of decided waits after completing them; and its calls fail at their own pace.
            await Wait.UntilAsync(() => outcomes.Total >= Waits, Deadline, () => $"the view to count its decided waits ({outcomes.Total})", Ct);
            await Wait.UntilAsync(() => rig.Log.FailedCalls.Count > 0, Deadline, () => $"a call of the view to fail during the outage ({view.WatchCalls} watch calls, {atCut.Watch} at the cut)", Ct);
            string figures = Figures(view, atCut, results, rig, outcomes);
            TestContext.Current.TestOutputHelper?.WriteLine(figures);
            Assert.All(results, r => Assert.Null(r.Error));
            Assert.All(results, r => Assert.Equal(LsnWaitOutcome.TimedOut, r.Outcome));
            Assert.All(results, r => Assert.True(r.Elapsed >= timeout, $"timed out after {r.Elapsed.TotalMilliseconds:0.0} ms, before its {timeout.TotalMilliseconds} ms ({figures})"));
            Assert.All(results, r => Assert.True(r.Elapsed <= timeout + TimeSpan.FromSeconds(2), $"timed out only after {r.Elapsed.TotalMilliseconds:0} ms for a {timeout.TotalMilliseconds} ms timeout ({figures})"));
            Assert.Equal(0, view.PendingWaits);
            Assert.Equal(new Dictionary<string, long> { ["timed_out"] = Waits }, outcomes.Snapshot());
            Assert.False(view.Covers(written), $"the view covers {written} though replay was paused and the gateway lost ({figures})");

            // The view kept calling through the outage, and nothing got through.
            Assert.True(view.WatchCalls > atCut.Watch, $"no call to the tracker during the outage ({figures})");
            Assert.Equal(atCut.Pushes, view.Pushes);
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    [Fact]
    public async Task GatewayLostThenRestored_PendingWaitsAreReadyAfterTheRestore_ThroughTheViewsOwnCalls_AndTheRowIsOnTheReplica()
    {
        TimeSpan timeout = TimeSpan.FromSeconds(30);
        await using GatewayRig rig = await GatewayRig.StartAsync(postgres, Ct);
        ReplayView view = rig.Views.Get(Region);
        ILsnTrackerGrain tracker = rig.SiloTracker;
        string table = await CreateTableAsync("gw_lost_restored");
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await using NpgsqlDataSource replica = NpgsqlDataSource.Create(postgres.Standby2ConnectionString);
        await ReadyBeforeTheFaultAsync(rig, view, primary);

        await ReplicaControl.PauseReplayAsync(postgres.Standby2ConnectionString, Ct);
        try
        {
            Lsn written = await InsertAsync(primary, table, 1);
            using var outcomes = new ViewOutcomes();
            List<Task<WaitRecord>> waits = StartWaits(view, written, timeout, onReady: () => RowOnReplicaAsync(replica, table, 1));
            await AssertPendingWithDemandAsync(rig, view, waits, "before the cut");

            Counters atCut = Counters.Of(view);
            rig.CutGateway();
            await ReplicaControl.ResumeReplayAsync(postgres.Standby2ConnectionString, Ct);
            await ReplicaControl.WaitForCatchUpAsync(postgres.PrimaryConnectionString, postgres.Standby2ConnectionString, Deadline, Ct);

            // The tracker saw the write replayed and pushed it; the push could not arrive, so the tracker dropped the view.
            LsnTrackerStatus status = await StatusAsync(tracker);
            await Wait.UntilAsync(
                async () => (status = await StatusAsync(tracker)) is { LastReplay: Lsn replay, Views: 0 } && replay >= written,
                Deadline,
                () => $"the tracker to reach {written} and drop the unreachable view (it is at {status.LastReplay}, {status.Views} views)",
                Ct);

            // The outage lasts until the view has called again after a failed call (one call at a time, so a second call
            // since the cut means the first one ended, and nothing ends well while the gateway is lost) and Orleans itself
            // gave up on a call (a pull fails only so: its own deadline is the waits' 30 s), about 5 s in.
            await Wait.UntilAsync(
                () => view.WatchCalls >= atCut.Watch + 2 && rig.Log.FailedCalls.Any(f => f.StartsWith("RequestAndAwait", StringComparison.Ordinal)),
                Deadline,
                () => $"a retry after a failed call, and a pull failed by Orleans ({view.WatchCalls} watch calls, {atCut.Watch} at the cut; failed: {string.Join(", ", rig.Log.FailedCalls)})",
                Ct);

            // Nothing reached the client while the gateway was lost: every wait is still pending.
            Assert.Equal(Waits, view.PendingWaits);
            Assert.DoesNotContain(waits, w => w.IsCompleted);
            Assert.False(view.Covers(written), $"the view covers {written} while the gateway is lost");
            Assert.Equal(atCut.Pushes, view.Pushes);
            Assert.Empty(outcomes.Snapshot());

            Counters atRestore = Counters.Of(view);
            long restoredAt = Stopwatch.GetTimestamp();
            rig.RestoreGateway();
            WaitRecord[] results = await Wait.ForAsync(Task.WhenAll(waits), Deadline, "every wait to end after the gateway was restored");
            TimeSpan firstReady = Stopwatch.GetElapsedTime(restoredAt, results.Min(r => r.EndedAt));
            TimeSpan lastReady = Stopwatch.GetElapsedTime(restoredAt, results.Max(r => r.EndedAt));

            // The tracker had dropped the view: it holds it again only if a call of the view reached it after the restore.
            await Wait.UntilAsync(
                async () => (status = await StatusAsync(tracker)).Views == 1 && rig.Log.Recoveries > 0,
                Deadline,
                () => $"the view registered again and its loop recovered ({status.Views} views at the tracker, {rig.Log.Recoveries} recoveries logged)",
                Ct);

            await Wait.UntilAsync(() => outcomes.Total >= Waits, Deadline, () => $"the view to count its decided waits ({outcomes.Total})", Ct);
            string figures = $"answered {firstReady.TotalMilliseconds:0}..{lastReady.TotalMilliseconds:0} ms after the restore; at the cut {atCut}; at the restore {atRestore}; now {Counters.Of(view)}; "
                + Figures(view, atCut, results, rig, outcomes);
            TestContext.Current.TestOutputHelper?.WriteLine(figures);
            Assert.All(results, r => Assert.Null(r.Error));
            Assert.All(results, r => Assert.Equal(LsnWaitOutcome.Ready, r.Outcome));
            Assert.All(results, r => Assert.True(r.RowThere, $"row 1 ({written}) missing on the replica right after Ready at {r.ReplayLsn} ({figures})"));
            Assert.All(results, r => Assert.True(r.ReplayLsn >= written, $"Ready at {r.ReplayLsn}, below the write's {written} ({figures})"));
            Assert.Equal(0, view.PendingWaits);
            Assert.Equal(new Dictionary<string, long> { ["ready"] = Waits }, outcomes.Snapshot());
            Assert.True(view.Covers(written), $"the view does not cover {written} after the restore ({figures})");
            Assert.True(view.WatchCalls > atCut.Watch, $"no call of the view since the cut ({figures})");
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    /// <summary>
    /// The control for the test above: the same steps with the gateway intact. The tracker's push arrives, so it keeps
    /// the view, and the waits are Ready: the state that test waits for (the view dropped) and its check that the waits
    /// are still pending come from the cut alone.
    /// </summary>
    [Fact]
    public async Task Control_GatewayIntact_TheTrackerKeepsTheView_AndTheSameWaitsAreReady()
    {
        await using GatewayRig rig = await GatewayRig.StartAsync(postgres, Ct);
        ReplayView view = rig.Views.Get(Region);
        string table = await CreateTableAsync("gw_lost_control");
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await ReadyBeforeTheFaultAsync(rig, view, primary);

        await ReplicaControl.PauseReplayAsync(postgres.Standby2ConnectionString, Ct);
        try
        {
            Lsn written = await InsertAsync(primary, table, 1);
            List<Task<WaitRecord>> waits = StartWaits(view, written, TimeSpan.FromSeconds(30), onReady: null);
            await AssertPendingWithDemandAsync(rig, view, waits, "before replay resumes");
            long pushes = view.Pushes;

            await ReplicaControl.ResumeReplayAsync(postgres.Standby2ConnectionString, Ct);
            WaitRecord[] results = await Wait.ForAsync(Task.WhenAll(waits), Deadline, "every wait to be Ready with the gateway intact");
            Assert.All(results, r => Assert.Null(r.Error));
            Assert.All(results, r => Assert.Equal(LsnWaitOutcome.Ready, r.Outcome));
            Assert.Equal(0, view.PendingWaits);

            // A pull may answer first (replay was paused longer than StaleAfter); the push of the advance follows.
            await Wait.UntilAsync(() => view.Pushes > pushes, Deadline, () => $"a push of the advance ({view.Pushes} pushes, {pushes} before)", Ct);
            Assert.Equal(1, (await StatusAsync(rig.SiloTracker)).Views);
            Assert.Empty(rig.Log.FailedCalls);
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    /// <summary>The view is registered and pushed to before the fault: a first wait through it is Ready.</summary>
    private static async Task ReadyBeforeTheFaultAsync(GatewayRig rig, ReplayView view, NpgsqlConnection primary)
    {
        Lsn before = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
        Assert.Equal(LsnWaitOutcome.Ready, (await view.WaitAsync(before, Deadline, Ct)).Outcome);
        await Wait.UntilAsync(async () => (await StatusAsync(rig.SiloTracker)).Views == 1, Deadline, () => "the view registered at the tracker", Ct);
    }

    /// <summary>
    /// Every wait pending and the tracker holding the view's demand (its demand call was answered): the fault hits a view
    /// that expects pushes, not one still registering.
    /// </summary>
    private static async Task AssertPendingWithDemandAsync(GatewayRig rig, ReplayView view, List<Task<WaitRecord>> waits, string phase)
    {
        ILsnTrackerGrain tracker = rig.SiloTracker;
        LsnTrackerStatus? status = null;
        await Wait.UntilAsync(
            async () => (status = await StatusAsync(tracker)).ViewsWithDemand == 1,
            Deadline,
            () => $"the view's demand at the tracker {phase} ({status?.Views} views, {status?.ViewsWithDemand} with demand)",
            Ct);
        Assert.Equal(Waits, view.PendingWaits);
        Assert.DoesNotContain(waits, w => w.IsCompleted);
    }

    /// <summary>The tracker's status from inside the silo, bounded: a status call that hangs fails the test instead of stalling it.</summary>
    private static Task<LsnTrackerStatus> StatusAsync(ILsnTrackerGrain tracker) => tracker.GetStatus().WaitAsync(TimeSpan.FromSeconds(10), Ct);

    private static List<Task<WaitRecord>> StartWaits(ReplayView view, Lsn lsn, TimeSpan timeout, Func<Task<bool>>? onReady)
    {
        var waits = new List<Task<WaitRecord>>(Waits);
        for (int i = 0; i < Waits; i++)
        {
            waits.Add(WaitOnceAsync(view, lsn, timeout, onReady));
        }

        return waits;
    }

    private static async Task<WaitRecord> WaitOnceAsync(ReplayView view, Lsn lsn, TimeSpan timeout, Func<Task<bool>>? onReady)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            LsnWaitResult result = await view.WaitAsync(lsn, timeout, Ct);
            TimeSpan elapsed = sw.Elapsed;
            long endedAt = Stopwatch.GetTimestamp();
            bool rowThere = result.IsReady && onReady is not null && await onReady();
            return new WaitRecord(result.Outcome, result.ReplayLsn, elapsed, endedAt, rowThere, null);
        }
#pragma warning disable CA1031 // Recorded: the test asserts that no wait threw.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return new WaitRecord(null, null, sw.Elapsed, Stopwatch.GetTimestamp(), false, e);
        }
    }

    private static async Task<bool> RowOnReplicaAsync(NpgsqlDataSource replica, string table, long id)
    {
        await using NpgsqlConnection conn = await replica.OpenConnectionAsync(Ct);
        await using var cmd = new NpgsqlCommand($"select exists(select 1 from {table} where id = $1)", conn);
        cmd.Parameters.AddWithValue(id);
        return (bool)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    private static string Figures(ReplayView view, Counters atCut, WaitRecord[] results, GatewayRig rig, ViewOutcomes outcomes)
    {
        IEnumerable<TimeSpan> elapsed = results.Select(r => r.Elapsed);
        string failed = string.Join(", ", rig.Log.FailedCalls.GroupBy(f => f).Select(g => $"{g.Key} x{g.Count()}"));
        string decided = string.Join(", ", outcomes.Snapshot().Select(o => $"{o.Key} {o.Value}"));
        return $"{results.Count(r => r.Outcome == LsnWaitOutcome.Ready)} ready, {results.Count(r => r.Outcome == LsnWaitOutcome.TimedOut)} timed out, "
            + $"{results.Count(r => r.Error is not null)} threw (view metric: {decided}); elapsed {elapsed.Min().TotalMilliseconds:0}..{elapsed.Max().TotalMilliseconds:0} ms; "
            + $"since the cut {view.WatchCalls - atCut.Watch} watch calls, {view.PullCalls - atCut.Pulls} pulls, {view.Pushes - atCut.Pushes} pushes; "
            + $"failed calls: [{failed}]; Orleans warnings: [{string.Join(" | ", rig.Log.OrleansWarnings.Distinct().Take(5))}]";
    }

    private async Task<string> CreateTableAsync(string name)
    {
        await using NpgsqlConnection primary = await OpenAsync(postgres.PrimaryConnectionString);
        await using var cmd = new NpgsqlCommand($"drop table if exists {name}; create table {name}(id bigint primary key)", primary);
        await cmd.ExecuteNonQueryAsync(Ct);
        return name;
    }

    private static async Task<Lsn> InsertAsync(NpgsqlConnection primary, string table, long id)
    {
        await using (var cmd = new NpgsqlCommand($"insert into {table} values ($1)", primary))
        {
            cmd.Parameters.AddWithValue(id);
            await cmd.ExecuteNonQueryAsync(Ct);
        }

        return await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
    }

    private static async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(Ct);
        return conn;
    }

    /// <summary>One wait's end: <paramref name="EndedAt"/> is the <see cref="Stopwatch"/> timestamp when the view answered.</summary>
    private sealed record WaitRecord(LsnWaitOutcome? Outcome, Lsn? ReplayLsn, TimeSpan Elapsed, long EndedAt, bool RowThere, Exception? Error);

    private readonly record struct Counters(long Watch, long Pulls, long Pushes)
    {
        public static Counters Of(ReplayView view) => new(view.WatchCalls, view.PullCalls, view.Pushes);

        public override string ToString() => $"{Watch} watch calls, {Pulls} pulls, {Pushes} pushes";
    }

    /// <summary>
    /// The view's own count of decided waits (<c>orleanslsn.client.view.waits</c>, region us-east), by outcome: a wait
    /// answered twice would count twice. The collection runs alone, so no other view of the region decides waits meanwhile.
    /// </summary>
    private sealed class ViewOutcomes : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _counts = new(StringComparer.Ordinal);

        public ViewOutcomes()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == ClientMetrics.MeterName && instrument.Name == "orleanslsn.client.view.waits")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                string? region = null;
                string? outcome = null;
                foreach (KeyValuePair<string, object?> tag in tags)
                {
                    region = tag.Key == "orleanslsn.region" ? tag.Value as string : region;
                    outcome = tag.Key == "orleanslsn.outcome" ? tag.Value as string : outcome;
                }

                if (region == Region && outcome is not null)
                {
                    _counts.AddOrUpdate(outcome, value, (_, sum) => sum + value);
                }
            });
            _listener.Start();
        }

        public Dictionary<string, long> Snapshot() => new(_counts, StringComparer.Ordinal);

        public long Total => _counts.Values.Sum();

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>The client's log as the tests read it: the view's failed calls (by exception type), its recoveries, Orleans' warnings.</summary>
    private sealed class ClientLog : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _failedCalls = new();
        private readonly ConcurrentQueue<string> _orleansWarnings = new();
        private int _recoveries;

        /// <summary>One entry per failed call: <c>WatchReplay</c> or <c>RequestAndAwait</c>, then the exception type.</summary>
        public IReadOnlyList<string> FailedCalls => [.. _failedCalls];

        public int Recoveries => Volatile.Read(ref _recoveries);

        public IReadOnlyList<string> OrleansWarnings => [.. _orleansWarnings];

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(ClientLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (category == typeof(ReplayView).FullName)
                {
                    string? errorType = state is IEnumerable<KeyValuePair<string, object?>> values
                        ? values.FirstOrDefault(v => v.Key == "ErrorType").Value as string
                        : null;
                    switch (eventId.Id)
                    {
                        case ClientEventIds.ViewCallFailed:
                            log._failedCalls.Enqueue("WatchReplay " + errorType);
                            break;
                        case ClientEventIds.ViewPullFailed:
                            log._failedCalls.Enqueue("RequestAndAwait " + errorType);
                            break;
                        case ClientEventIds.ViewRecovered:
                            Interlocked.Increment(ref log._recoveries);
                            break;
                    }
                }
                else if (logLevel >= LogLevel.Warning && category.StartsWith("Orleans", StringComparison.Ordinal))
                {
                    log._orleansWarnings.Enqueue($"{category.Split('.')[^1]}: {exception?.GetType().Name ?? formatter(state, exception)}");
                }
            }
        }
    }

    /// <summary>
    /// One silo over real TCP (localhost clustering, region us-east, the second standby), a proxy in front of its
    /// gateway, and a separate client whose only gateway is the proxy, with the client settings OrleansLsn's own client
    /// builder uses (gateway list refresh 5 s, response timeout 30 s, cancellation of timed-out calls).
    /// </summary>
    private sealed class GatewayRig : IAsyncDisposable
    {
        private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

        private readonly IHost _silo;
        private readonly TcpFaultProxy _proxy;
        private readonly IHost _client;

        private GatewayRig(IHost silo, TcpFaultProxy proxy, IHost client, ReplayViews views, ClientLog log)
        {
            _silo = silo;
            _proxy = proxy;
            _client = client;
            Views = views;
            Log = log;
        }

        public ReplayViews Views { get; }

        public ClientLog Log { get; }

        /// <summary>The tracker as seen from inside the silo, whatever happens to the client's gateway.</summary>
        public ILsnTrackerGrain SiloTracker => _silo.Services.GetRequiredService<IGrainFactory>().GetGrain<ILsnTrackerGrain>(Region);

        public static async Task<GatewayRig> StartAsync(PostgresFixture postgres, CancellationToken cancellationToken)
        {
            string clusterId = "gateway-lost-" + Guid.NewGuid().ToString("N")[..8];

            // The silo listens on a port of its own and advertises the proxy's as its gateway: the client addresses the
            // gateway's system targets by the address it dials, so that address must be the one the silo says it has.
            int listeningGatewayPort = FreePort();
            var proxy = new TcpFaultProxy("127.0.0.1", listeningGatewayPort);
            IHost silo = BuildSilo(postgres, clusterId, FreePort(), proxy.Port, listeningGatewayPort);
            IHost? client = null;
            try
            {
                await silo.StartAsync(cancellationToken).WaitAsync(StartTimeout, cancellationToken);
                var log = new ClientLog();
                client = BuildClient(clusterId, proxy.Port, log);
                await client.StartAsync(cancellationToken).WaitAsync(StartTimeout, cancellationToken);
                var views = new ReplayViews(
                    client.Services.GetRequiredService<IClusterClient>(),
                    new ReplayViewOptions { StaleAfter = TimeSpan.FromMilliseconds(300) },
                    client.Services.GetRequiredService<ILoggerFactory>());
                return new GatewayRig(silo, proxy, client, views, log);
            }
            catch
            {
                await StopAsync(client);
                await proxy.DisposeAsync();
                await StopAsync(silo);
                throw;
            }
        }

        /// <summary>No byte moves and every open connection is reset: the client's reconnects reach nothing.</summary>
        public void CutGateway()
        {
            _proxy.Freeze();
            _proxy.DropConnections();
        }

        public void RestoreGateway() => _proxy.Thaw();

        public async ValueTask DisposeAsync()
        {
            // The gateway back first, so that the view withdraws its registration and the client stops cleanly.
            _proxy.Thaw();
            await Views.DisposeAsync();
            await StopAsync(_client);
            await _proxy.DisposeAsync();
            await StopAsync(_silo);
        }

        private static async Task StopAsync(IHost? host)
        {
            if (host is null)
            {
                return;
            }

            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await host.StopAsync(stop.Token);
            }
            finally
            {
                host.Dispose();
            }
        }

        private static IHost BuildSilo(PostgresFixture postgres, string clusterId, int siloPort, int advertisedGatewayPort, int listeningGatewayPort)
        {
            HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["OrleansLsn:Region"] = Region,
                ["OrleansLsn:PrimaryConnectionString"] = postgres.PrimaryConnectionString,
                ["OrleansLsn:ReplicaConnectionString"] = postgres.Standby2ConnectionString,
                ["OrleansLsn:Tracker:QueryTimeout"] = "00:00:01",
                ["OrleansLsn:Tracker:ReconnectMaxDelay"] = "00:00:00.500",
                ["OrleansLsn:Observers:PushTimeout"] = "00:00:01",
            });
            builder.Logging.ClearProviders();
            builder.UseOrleans(silo => silo
                .UseLocalhostClustering(siloPort, advertisedGatewayPort, serviceId: clusterId, clusterId: clusterId)
                .Configure<EndpointOptions>(o => o.GatewayListeningEndpoint = new IPEndPoint(IPAddress.Loopback, listeningGatewayPort))
                .AddOrleansLsn(builder.Configuration));
            return builder.Build();
        }

        private static IHost BuildClient(string clusterId, int gatewayPort, ClientLog log)
        {
            HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Logging.ClearProviders();
            builder.Logging.AddProvider(log);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddFilter(typeof(ReplayView).FullName, LogLevel.Debug);
            builder.UseOrleansClient(client => client
                .UseStaticClustering(new IPEndPoint(IPAddress.Loopback, gatewayPort))
                .Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = clusterId;
                    o.ServiceId = clusterId;
                })
                .Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5))
                .Configure<ClientMessagingOptions>(o =>
                {
                    o.ResponseTimeout = TimeSpan.FromSeconds(30);
                    o.CancelRequestOnTimeout = true;
                }));
            return builder.Build();
        }

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }
}
