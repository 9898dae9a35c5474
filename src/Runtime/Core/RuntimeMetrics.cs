using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace OrleansLsn.Runtime;

/// <summary>
/// The runtime's metrics, on meter <c>OrleansLsn.Runtime</c>: calls and their latency (by side and outcome),
/// activations, connections, refused handshakes and connections closed for broken frames.
/// </summary>
internal static class RuntimeMetrics
{
    public const string MeterName = "OrleansLsn.Runtime";

    private static readonly Meter Meter = new(MeterName, "1.0");

    private static readonly Counter<long> Calls = Meter.CreateCounter<long>(
        "orleanslsn.runtime.calls", "{call}", "Calls completed by their caller, by side (client or silo) and outcome.");

    private static readonly Histogram<double> CallDuration = Meter.CreateHistogram<double>(
        "orleanslsn.runtime.call.duration", "s", "Time from sending a request to its response, at the caller.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });

    private static readonly Counter<long> RequestsReceived = Meter.CreateCounter<long>(
        "orleanslsn.runtime.requests.received", "{request}", "Requests received for grains or observers hosted here.");

    private static readonly UpDownCounter<long> Activations = Meter.CreateUpDownCounter<long>(
        "orleanslsn.runtime.activations", "{activation}", "Grain activations alive in this silo.");

    private static readonly UpDownCounter<long> Connections = Meter.CreateUpDownCounter<long>(
        "orleanslsn.runtime.connections", "{connection}", "Open connections past the handshake, by side.");

    private static readonly Counter<long> Refused = Meter.CreateCounter<long>(
        "orleanslsn.runtime.connections.refused", "{connection}", "Connections refused at the handshake, by reason.");

    private static readonly Counter<long> InvalidFrames = Meter.CreateCounter<long>(
        "orleanslsn.runtime.connections.invalid_frames", "{connection}", "Connections closed because the peer broke the frame protocol.");

    public static void CallCompleted(string side, string outcome, long startedTimestamp)
    {
        var tags = new TagList { { "side", side }, { "outcome", outcome } };
        Calls.Add(1, tags);
        if (CallDuration.Enabled)
        {
            CallDuration.Record(Stopwatch.GetElapsedTime(startedTimestamp).TotalSeconds, tags);
        }
    }

    public static void RequestReceived(string side) => RequestsReceived.Add(1, new KeyValuePair<string, object?>("side", side));

    public static void ActivationCreated() => Activations.Add(1);

    public static void ActivationRemoved() => Activations.Add(-1);

    public static void ConnectionOpened(string side) => Connections.Add(1, new KeyValuePair<string, object?>("side", side));

    public static void ConnectionClosed(string side) => Connections.Add(-1, new KeyValuePair<string, object?>("side", side));

    public static void ConnectionRefused(string reason) => Refused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public static void InvalidFrame(string side) => InvalidFrames.Add(1, new KeyValuePair<string, object?>("side", side));
}
