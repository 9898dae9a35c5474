using OrleansLsn.Runtime;

namespace OrleansLsn.Bench.Runtime;

/// <summary>What every runtime scenario shares: the in-process silo's client, the echo anchor and the run's sizes.</summary>
/// <param name="Client">The client, connected to the in-process silo through its gateway.</param>
/// <param name="Echo">The raw TCP echo server of the anchor.</param>
/// <param name="Quick">Shorter run.</param>
/// <param name="PayloadBytes">Payload of a ping call and of an echo frame.</param>
/// <param name="Rounds">Alternating rounds of grain calls and raw echo per concurrency level.</param>
/// <param name="Warmup">Unmeasured run before each measured window.</param>
/// <param name="Duration">Each measured window (per round and side).</param>
/// <param name="CallTimeout">The client's response timeout; a worker still busy this long (plus 5 s) after a window means a hang.</param>
/// <param name="Pushes">One-way observer pushes of the measured round.</param>
internal sealed record RuntimeBenchContext(
    ClusterClient Client,
    EchoServer Echo,
    bool Quick,
    int PayloadBytes,
    int Rounds,
    TimeSpan Warmup,
    TimeSpan Duration,
    TimeSpan CallTimeout,
    int Pushes)
{
    /// <summary>Grain keys the workers spread over (worker i calls key i mod this).</summary>
    public const int GrainKeys = 1000;

    /// <summary>How long the workers may take to finish after a window.</summary>
    public TimeSpan DrainLimit => CallTimeout + TimeSpan.FromSeconds(5);

    public static string GrainKey(int worker) => "ping-" + (worker % GrainKeys).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A payload of <see cref="PayloadBytes"/> bytes with recognizable content.</summary>
    public byte[] NewPayload(int seed)
    {
        byte[] payload = new byte[PayloadBytes];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)(seed + i);
        }

        return payload;
    }
}
