using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Samples.TodoWeb;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.AspNetCore;

/// <summary>
/// One trace for a read-your-writes request of the to-do sample, against the real cluster, primary and us-east replica
/// (client and silos in this process, so one listener sees every side): the request carries a W3C
/// <c>traceparent</c> (as a browser instrumented with OpenTelemetry sends), and ASP.NET Core's span for it, the read
/// decision, the replay view's wait and the SQL on the replica all belong to that trace; and the sample configured with
/// an OTLP endpoint exports that trace to a real OTLP/HTTP receiver.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class WebTracingTests(ClusterFixture fixture) : IAsyncDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask DisposeAsync()
    {
        await ReplicaControl.ResumeReplayAsync(fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        await SharedReplayViews.RetireAsync(fixture.Client, LsnTestCluster.UsEast);
    }

    [Fact]
    public async Task ARequestThatWaitsForTheReplica_IsOneTrace_FromTheRequestToTheReplicasSql_AndIsExportedOverOtlp()
    {
        await using OtlpReceiver receiver = await OtlpReceiver.StartAsync();
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "Microsoft.AspNetCore" or "Npgsql" || s.Name.StartsWith("OrleansLsn.", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using WebApplication app = TodoApp.Build([], builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["OrleansLsn:Reads:Region"] = LsnTestCluster.UsEast,
                ["OrleansLsn:Reads:Primary"] = fixture.Postgres.PrimaryConnectionString,
                ["OrleansLsn:Reads:Replicas:us-east"] = fixture.Postgres.Standby2ConnectionString,
                ["OrleansLsn:Reads:MaxWait"] = "00:00:30",
                ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://127.0.0.1:{receiver.Port}",
                ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
                ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
            });
            builder.Services.AddSingleton<IClusterClient>(fixture.Client);
        });
        await TodoApp.StartAsync(app, Ct);
        var baseUri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

        // A list, an item added while us-east's replay is held, and the list read with the token and a traceparent.
        using var handler = new HttpClientHandler { CookieContainer = new System.Net.CookieContainer(), AllowAutoRedirect = false };
        using var http = new HttpClient(handler) { BaseAddress = baseUri };
        string list = "trace-" + Guid.NewGuid().ToString("N")[..8];
        string page = await http.GetStringAsync($"/lists/{list}", Ct);
        string field = Between(page, "name=\"__RequestVerificationToken\" value=\"", "\"");
        await ReplicaControl.PauseReplayAsync(fixture.Postgres.Standby2ConnectionString, Ct);
        using (var add = new FormUrlEncodedContent(new Dictionary<string, string> { ["text"] = "traced", ["__RequestVerificationToken"] = field }))
        using (HttpResponseMessage added = await http.PostAsync($"/lists/{list}/items", add, Ct))
        {
            Assert.Equal(System.Net.HttpStatusCode.SeeOther, added.StatusCode);
        }

        ActivityTraceId trace = ActivityTraceId.CreateRandom();
        using var read = new HttpRequestMessage(HttpMethod.Get, $"/lists/{list}");
        read.Headers.Add("traceparent", $"00-{trace}-{ActivitySpanId.CreateRandom()}-01");
        ReplayView view = ReplayViews.For(fixture.Client).Get(LsnTestCluster.UsEast);
        Task<HttpResponseMessage> reading = http.SendAsync(read, Ct);
        await Wait.UntilAsync(() => Task.FromResult(view.PendingWaits > 0 || reading.IsCompleted), TimeSpan.FromSeconds(20), () => "the list waiting in us-east's view", Ct);
        await ReplicaControl.ResumeReplayAsync(fixture.Postgres.Standby2ConnectionString, Ct);
        using HttpResponseMessage response = await reading;
        string body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Contains("data-outcome=\"replayed_after_wait\"", body, StringComparison.Ordinal);
        Assert.Contains(">traced<", body, StringComparison.Ordinal);

        // The trace: the request, the decision under it, the view's wait under that, the replica's SQL under the request.
        Activity request = await WaitForAsync(stopped, a => a.TraceId == trace && a.Source.Name == "Microsoft.AspNetCore", "ASP.NET Core's span for the request");
        Activity decision = await WaitForAsync(stopped, a => a.TraceId == trace && a.OperationName == "orleanslsn.read_decision", "the read decision's span");
        Activity viewWait = await WaitForAsync(stopped, a => a.TraceId == trace && a.OperationName == "orleanslsn.view.wait", "the view's wait span");
        int replicaPort = new NpgsqlConnectionStringBuilder(fixture.Postgres.Standby2ConnectionString).Port;
        Activity sql = await WaitForAsync(
            stopped,
            a => a.TraceId == trace && a.Source.Name == "Npgsql" && a.TagObjects.Any(t => t.Key is "server.port" or "net.peer.port" && Convert.ToInt32(t.Value, System.Globalization.CultureInfo.InvariantCulture) == replicaPort),
            $"Npgsql's span for the query on the replica (port {replicaPort})");
        Assert.Equal(request.SpanId, decision.ParentSpanId);
        Assert.Equal(decision.SpanId, viewWait.ParentSpanId);
        Assert.Equal(request.SpanId, sql.ParentSpanId);
        Assert.Equal("replayed_after_wait", decision.GetTagItem("orleanslsn.read.outcome"));
        Assert.Equal("Accepted", decision.GetTagItem("orleanslsn.token.verdict"));

        // Exported: the trace id and the decision's span name arrive at the OTLP receiver.
        byte[] traceBytes = Convert.FromHexString(trace.ToHexString());
        byte[] exported = await receiver.WaitForAsync(b => b.AsSpan().IndexOf(traceBytes) >= 0 && b.AsSpan().IndexOf("orleanslsn.read_decision"u8) >= 0, TimeSpan.FromSeconds(30), $"an OTLP request with trace {trace} and the read decision");
        Assert.True(exported.AsSpan().IndexOf(Encoding.UTF8.GetBytes("orleanslsn-todo-web")) >= 0, "the export does not name the sample's service");
    }

    private static string Between(string text, string before, string after)
    {
        int start = text.IndexOf(before, StringComparison.Ordinal);
        Assert.True(start >= 0, $"'{before}' not in the page");
        start += before.Length;
        return text[start..text.IndexOf(after, start, StringComparison.Ordinal)];
    }

    private static async Task<Activity> WaitForAsync(ConcurrentQueue<Activity> stopped, Func<Activity, bool> match, string what)
    {
        Activity? found = null;
        await Wait.UntilAsync(() => Task.FromResult((found = stopped.FirstOrDefault(match)) is not null), TimeSpan.FromSeconds(20), () => $"{what}; stopped: {string.Join(", ", stopped.Take(30).Select(a => $"{a.Source.Name}/{a.OperationName}"))}", Ct);
        return found!;
    }
}
