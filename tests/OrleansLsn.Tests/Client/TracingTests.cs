using System.Collections.Concurrent;
using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// Traces on the shared cluster (client and silos in this process, so one <see cref="ActivityListener"/> sees both
/// sides): a read-your-writes read is one trace from the client's read span through Orleans' call to the silo's span
/// for it and the tracker's held wait. Replay is paused only on the us-east standby, always resumed in <c>finally</c>.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class TracingTests(ClusterFixture fixture) : ReplicaDataSourcesTestBase(fixture)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task TrackerRead_IsOneTrace_FromTheReadSpan_ThroughTheOrleansCall_ToTheSilosSpanAndTheHeldWait()
    {
        using var spans = new SpanRecorder();
        string table = await CreateTableAsync("tracing_tracker");
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas, new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromSeconds(15), UseReplayView = false });
        ILsnTrackerGrain usEast = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        await Wait.UntilAsync(async () => await usEast.GetLastReplay() is not null, Deadline, () => "a replay position in us-east", Ct);

        ReadYourWritesRead read;
        Lsn written;
        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (1, 'x')"), Ct);
            written = session.LastWrite!.Value;
            Task<ReadYourWritesRead> reading = session.OpenReadAsync(LsnTestCluster.UsEast, Ct);

            // The tracker holds the wait (its span starts only then); replay resumes after.
            await Wait.UntilAsync(() => spans.Started.Any(a => a.OperationName == "orleanslsn.tracker.wait" && Tag(a, "orleanslsn.lsn") == written.ToString()), Deadline, () => "the tracker holding the read's wait", Ct);
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
            read = await Wait.ForAsync(reading, Deadline, "the read after replay resumed");
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }

        await using (read)
        {
            Assert.Equal(ReadReason.ReplayedAfterWait, read.Reason);
        }

        Activity readSpan = await spans.WaitForAsync(a => a.Source.Name == OrleansLsnActivitySources.Client && a.OperationName == "orleanslsn.read" && Tag(a, "orleanslsn.lsn") == written.ToString(), "the client's read span");
        Assert.Equal(LsnTestCluster.UsEast, Tag(readSpan, "orleanslsn.region"));
        Assert.Equal("replica", Tag(readSpan, "orleanslsn.route"));
        Assert.Equal(nameof(ReadReason.ReplayedAfterWait), Tag(readSpan, "orleanslsn.reason"));
        Assert.Equal(LsnTestCluster.UsEast, Tag(readSpan, "orleanslsn.read_region"));
        Assert.True(readSpan.GetTagItem("orleanslsn.wait.duration") is double waited && waited > 0, "the read span has no wait duration");

        ActivityTraceId trace = readSpan.TraceId;
        Activity clientCall = await spans.WaitForAsync(
            a => a.TraceId == trace && IsOrleansCall(a) && a.Kind == ActivityKind.Client && a.DisplayName == "ILsnTrackerGrain/RequestAndAwait",
            "Orleans' client span for RequestAndAwait in the read's trace");
        Activity serverCall = await spans.WaitForAsync(
            a => a.TraceId == trace && IsOrleansCall(a) && a.Kind == ActivityKind.Server && a.DisplayName == "ILsnTrackerGrain/RequestAndAwait",
            "the silo's span for RequestAndAwait in the read's trace");
        Activity held = await spans.WaitForAsync(
            a => a.TraceId == trace && a.Source.Name == OrleansLsnActivitySources.Tracker && a.OperationName == "orleanslsn.tracker.wait",
            "the tracker's held-wait span in the read's trace");

        Assert.Equal(readSpan.SpanId, clientCall.ParentSpanId);
        Assert.Equal(clientCall.SpanId, serverCall.ParentSpanId);
        Assert.Equal(serverCall.SpanId, held.ParentSpanId);
        Assert.Equal("ready", Tag(held, "orleanslsn.outcome"));
        Assert.Equal(LsnTestCluster.UsEast, Tag(held, "orleanslsn.region"));
    }

    [Fact]
    public async Task ViewRead_ThatWaits_HasAViewWaitSpan_UnderTheReadSpan()
    {
        using var spans = new SpanRecorder();
        string table = await CreateTableAsync("tracing_view");
        await using var views = new ReplayViews(Client);
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas, new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromSeconds(15) }, views: views);

        // No view yet: the read starts it, so its loop would be in the read's trace if the view did not leave it.
        Lsn written;
        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (1, 'x')"), Ct);
            written = session.LastWrite!.Value;
            Task<ReadYourWritesRead> reading = session.OpenReadAsync(LsnTestCluster.UsEast, Ct);
            await Wait.UntilAsync(() => views.Get(LsnTestCluster.UsEast).PendingWaits > 0, Deadline, () => "the view holding the read's wait", Ct);
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
            await using ReadYourWritesRead read = await Wait.ForAsync(reading, Deadline, "the read after replay resumed");
            Assert.Equal(ReadReason.ReplayedAfterWait, read.Reason);
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }

        Activity readSpan = await spans.WaitForAsync(a => a.OperationName == "orleanslsn.read" && Tag(a, "orleanslsn.lsn") == written.ToString(), "the client's read span");
        Activity viewWait = await spans.WaitForAsync(a => a.OperationName == "orleanslsn.view.wait" && a.TraceId == readSpan.TraceId, "the view's wait span in the read's trace");
        Assert.Equal(readSpan.SpanId, viewWait.ParentSpanId);
        Assert.Equal("ready", Tag(viewWait, "orleanslsn.outcome"));
        Assert.Equal(written.ToString(), Tag(viewWait, "orleanslsn.lsn"));
        Assert.Equal(nameof(ReadReason.ReplayedAfterWait), Tag(readSpan, "orleanslsn.reason"));

        // The view's loop (started by this read) belongs to no read: no call of it hangs under the read span. A demand sent
        // by the waiting read itself is a child of the view's wait span.
        Assert.DoesNotContain(spans.Stopped, a => a.ParentSpanId == readSpan.SpanId && IsOrleansCall(a));
        Assert.All(spans.Stopped.Where(a => a.TraceId == readSpan.TraceId && IsOrleansCall(a) && a.Kind == ActivityKind.Client),
            a => Assert.Equal(viewWait.SpanId, a.ParentSpanId));
    }

    [Fact]
    public async Task ReadThatTimesOut_MarksTheReadSpanFailed_WithTheLsnAndTheExceptionType()
    {
        using var spans = new SpanRecorder();
        string table = await CreateTableAsync("tracing_timeout");
        var options = new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromMilliseconds(500), OnTimeout = ReadYourWritesTimeoutPolicy.Throw };
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas, options);
        ILsnTrackerGrain usEast = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        await Wait.UntilAsync(async () => await usEast.GetLastReplay() is not null, Deadline, () => "a replay position in us-east", Ct);
        Lsn written;
        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (1, 'x')"), Ct);
            written = session.LastWrite!.Value;
            await Assert.ThrowsAsync<ReadYourWritesTimeoutException>(() => session.OpenReadAsync(LsnTestCluster.UsEast, Ct));
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }

        Activity readSpan = await spans.WaitForAsync(a => a.OperationName == "orleanslsn.read" && Tag(a, "orleanslsn.lsn") == written.ToString(), "the failed read's span");
        Assert.Equal(ActivityStatusCode.Error, readSpan.Status);
        Assert.Equal(typeof(ReadYourWritesTimeoutException).FullName, Tag(readSpan, "error.type"));
        Assert.Equal("none", Tag(readSpan, "orleanslsn.route"));
        Assert.Equal(nameof(ReadReason.TimedOut), Tag(readSpan, "orleanslsn.reason"));
    }

    [Fact]
    public void AddOrleansLsnInstrumentation_ListensToEveryOrleansLsnSource_AndOrleansGrainCalls()
    {
        var exported = new ConcurrentQueue<Activity>();
        using TracerProvider provider = Sdk.CreateTracerProviderBuilder()
            .AddOrleansLsnInstrumentation()
            .AddProcessor(new CollectingProcessor(exported))
            .Build();
        string[] expected = [.. OrleansLsnActivitySources.Names, "Microsoft.Orleans.Application", "Microsoft.Orleans.Runtime"];
        string marker = "instrumentation-" + Guid.NewGuid().ToString("N");
        foreach (string name in expected)
        {
            using var source = new ActivitySource(name);
            using Activity? activity = source.StartActivity(marker);
            Assert.True(activity is not null, $"nothing listens to {name}");
        }

        using (var other = new ActivitySource("Another.Library"))
        using (Activity? _ = other.StartActivity(marker))
        {
        }

        string[] seen = [.. exported.Where(a => a.OperationName == marker).Select(a => a.Source.Name).Order(StringComparer.Ordinal)];
        Assert.Equal(expected.Order(StringComparer.Ordinal), seen);
        Assert.Contains(OrleansLsnActivitySources.AspNetCore, expected);
    }

    private static string? Tag(Activity activity, string key) => activity.GetTagItem(key)?.ToString();

    // Orleans files a grain call under Microsoft.Orleans.Runtime when the interface's namespace starts with "Orleans"
    // (OrleansLsn's do), else under Microsoft.Orleans.Application: either is a grain call.
    private static bool IsOrleansCallSource(string name) => name is "Microsoft.Orleans.Application" or "Microsoft.Orleans.Runtime";

    private static bool IsOrleansCall(Activity activity) => IsOrleansCallSource(activity.Source.Name);

    private sealed class CollectingProcessor(ConcurrentQueue<Activity> exported) : BaseProcessor<Activity>
    {
        public override void OnEnd(Activity data) => exported.Enqueue(data);
    }

    /// <summary>Records every activity of OrleansLsn's sources and Orleans' grain call sources started or stopped in this process while it lives.</summary>
    private sealed class SpanRecorder : IDisposable
    {
        private readonly ActivityListener _listener;
        private readonly ConcurrentQueue<Activity> _started = new();
        private readonly ConcurrentQueue<Activity> _stopped = new();

        public SpanRecorder()
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name.StartsWith("OrleansLsn.", StringComparison.Ordinal) || IsOrleansCallSource(s.Name),
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStarted = _started.Enqueue,
                ActivityStopped = _stopped.Enqueue,
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public IEnumerable<Activity> Started => _started;

        public IEnumerable<Activity> Stopped => _stopped;

        public async Task<Activity> WaitForAsync(Func<Activity, bool> match, string what)
        {
            Activity? found = null;
            await Wait.UntilAsync(() => (found = _stopped.FirstOrDefault(match)) is not null, Deadline, () => $"{what}; stopped: {Describe()}", Ct);
            return found!;
        }

        public void Dispose() => _listener.Dispose();

        private string Describe() => string.Join(", ", _stopped.Take(40).Select(a => $"{a.Source.Name}/{a.DisplayName} {a.TraceId}"));
    }
}
