using System.Diagnostics;
using System.Text;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.Silo.Local;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Processes;

/// <summary>
/// A silo process of <c>src/Silo</c> with OTLP configured exports the trace a client started to a real OTLP/HTTP
/// receiver (Kestrel, in this test): the client's trace id and Orleans' span for the call arrive in the protobuf body.
/// The silo serves a region of its own (its "replica" is the primary), so the tracker the test calls lives on it.
/// </summary>
[Collection(DeploymentCollection.Name)]
public sealed class SiloTracingProcessTests(DeploymentFixture fixture)
{
    private const string Region = "otel";

    private const string TestSourceName = "OrleansLsn.Tests.Tracing";

    private static readonly ActivitySource TestSource = new(TestSourceName);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("OrleansLsn")]
    [InlineData("standard")]
    public async Task SiloWithOtlpConfigured_ExportsTheCallersTrace_ToAnOtlpHttpReceiver(string keys)
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        string endpoint = $"http://127.0.0.1:{receiver.Port}";
        var settings = new Dictionary<string, string>
        {
            ["OrleansLsn:Region"] = Region,
            ["OrleansLsn:ReplicaConnectionStringFile"] = fixture.Deployment.SiloConnectionStringFile,
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        };
        if (keys == "OrleansLsn")
        {
            settings["OrleansLsn:Tracing:OtlpEndpoint"] = endpoint;
            settings["OrleansLsn:Tracing:OtlpProtocol"] = "HttpProtobuf";
        }
        else
        {
            settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint;
            settings["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        }

        // StartSilo's region names the standby its settings point at; the overrides give this silo a region of its own.
        SiloProcess silo = fixture.Deployment.StartSilo("eu-west", settings);
        try
        {
            await silo.WaitHealthyAsync(TimeSpan.FromSeconds(60), Ct);
            Lsn lsn;
            await using (var primary = new NpgsqlConnection(fixture.Deployment.Postgres.Primary.ConnectionString))
            {
                await primary.OpenAsync(Ct);
                lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
            }

            ActivityTraceId trace;
            using (var listener = new ActivityListener
            {
                // Orleans injects the trace context only into a call it made a span for: its sources need a listener too.
                ShouldListenTo = s => s.Name == TestSourceName || s.Name.StartsWith("Microsoft.Orleans.", StringComparison.Ordinal),
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            })
            {
                ActivitySource.AddActivityListener(listener);
                using Activity root = TestSource.StartActivity("otel-test-call") ?? throw new InvalidOperationException("no activity");
                trace = root.TraceId;
                LsnWaitResult result = await fixture.Client.GetGrain<ILsnTrackerGrain>(Region).RequestAndAwait(lsn, TimeSpan.FromSeconds(5), Ct);
                Assert.Equal(LsnWaitOutcome.Ready, result.Outcome);
            }

            byte[] traceId = Convert.FromHexString(trace.ToHexString());
            byte[] callSpan = Encoding.UTF8.GetBytes("ILsnTrackerGrain/RequestAndAwait");
            // The silo's spans of this trace may be exported over several requests (the batch processor cuts them by
            // time): wait for the one that has Orleans' span for the call.
            byte[] body = await receiver.WaitForAsync(b => Contains(b, traceId) && Contains(b, callSpan), TimeSpan.FromSeconds(30),
                $"a /v1/traces request with trace {trace} and Orleans' span for the call; requests with the trace but not that span: {receiver.Bodies.Count(b => Contains(b, traceId) && !Contains(b, callSpan))}; log: {silo.ReadLogTail(20)}");
            Assert.True(Contains(body, Encoding.UTF8.GetBytes("Microsoft.Orleans.")), "the export does not name Orleans' source");
            Assert.True(Contains(body, Encoding.UTF8.GetBytes("orleanslsn-silo")), "the export does not name the service");
            Assert.Equal("application/x-protobuf", receiver.ContentType);
        }
        finally
        {
            await silo.StopAsync(TimeSpan.FromSeconds(30));
        }
    }

    private static bool Contains(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
