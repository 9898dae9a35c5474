using OrleansLsn.Runtime;

namespace OrleansLsn.Bench.Runtime;

/// <summary>Echoes the payload; no state, not reentrant (one turn per call, as a plain grain).</summary>
internal sealed class PingGrain : Grain, IPingGrain
{
    private static long _invocations;

    /// <summary>Ping calls that ran in any activation, ever: a cross-check that counted calls really reached the grains.</summary>
    public static long Invocations => Interlocked.Read(ref _invocations);

    public Task<byte[]> Ping(byte[] payload)
    {
        Interlocked.Increment(ref _invocations);
        return Task.FromResult(payload);
    }
}
