using OrleansLsn.Runtime;

namespace OrleansLsn.Bench.Runtime;

/// <summary>The grain of the call benchmark: returns what it is given.</summary>
public interface IPingGrain : IGrainWithStringKey
{
    /// <summary>Returns <paramref name="payload"/>.</summary>
    Task<byte[]> Ping(byte[] payload);
}

/// <summary>The observer of the push benchmark, in the client.</summary>
public interface IPushObserver : IGrainObserver
{
    /// <summary>One push; the grain does not wait for it to run.</summary>
    [OneWay]
    Task OnPush(long number);

    /// <summary>One push the grain waits for (a round trip silo → client → silo).</summary>
    Task OnPushAwaited(long number);
}

/// <summary>The grain that pushes to the benchmark's observer.</summary>
public interface IPushPublisherGrain : IGrainWithStringKey
{
    /// <summary>Replaces the observer pushes go to.</summary>
    Task Subscribe(IPushObserver observer);

    /// <summary>
    /// Makes <paramref name="count"/> one-way <see cref="IPushObserver.OnPush"/> calls, numbered from 0, and returns once
    /// they are queued for sending (it waits only when the connection's send queue is full).
    /// </summary>
    [ResponseTimeout("00:05:00")]
    Task PushMany(int count);

    /// <summary>Makes <paramref name="count"/> <see cref="IPushObserver.OnPushAwaited"/> calls one after the other, each awaited.</summary>
    [ResponseTimeout("00:05:00")]
    Task PushManyAwaited(int count);
}
