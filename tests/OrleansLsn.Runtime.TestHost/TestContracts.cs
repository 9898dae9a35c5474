namespace OrleansLsn.Runtime.TestHost;

public interface IEchoGrain : IGrainWithStringKey
{
    Task<string> Echo(string text);

    Task Ping();

    Task<int> Add(int a, int b);

    Task<Payload> Roundtrip(Payload payload);

    Task<string> WhoAmI();
}

[GenerateSerializer]
public sealed record Payload(string Name, long Number, IReadOnlyList<int> Items, TimeSpan? Delay, Color Color);

public enum Color
{
    Red,
    Green,
}

/// <summary>A type outside the contract: no [GenerateSerializer].</summary>
public sealed class NotInContract
{
    public string? Value { get; set; }
}

public interface IBadGrain : IGrainWithStringKey
{
    Task Send(NotInContract value);
}

public interface IUnregisteredGrain : IGrainWithStringKey
{
    Task Nothing();
}

public interface ILifecycleGrain : IGrainWithStringKey
{
    Task<int> Touch();

    Task Deactivate();

    Task KeepAlive(TimeSpan time);

    Task<int> StartTimer(TimeSpan period, bool keepAlive);

    Task<int> TimerTicks();
}

[KeepAlive]
public sealed class KeepAliveGrain : Grain, IKeepAliveGrain
{
    public Task Touch() => Task.CompletedTask;
}

public interface IKeepAliveGrain : IGrainWithStringKey
{
    Task Touch();
}

public interface ITurnGrain : IGrainWithStringKey
{
    /// <summary>Enters, yields a few times, leaves; returns the most turns seen inside at once.</summary>
    Task<int> Work(int yields);

    /// <summary>Blocks until <see cref="Release"/> is called (interleaving).</summary>
    Task Block();

    [AlwaysInterleave]
    Task Release();

    Task<int> MaxConcurrent();

    /// <summary>Calls itself through a reference.</summary>
    Task<string> CallSelf();

    /// <summary>Calls another grain that calls back into this one.</summary>
    Task<string> CallAround(string other);

    Task<string> CallBack(string origin);
}

[Reentrant]
public sealed class ReentrantTurnGrain : Grain, IReentrantGrain
{
    private TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Wait() => _gate.Task;

    public Task Open()
    {
        _gate.TrySetResult();
        _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Task.CompletedTask;
    }
}

public interface IReentrantGrain : IGrainWithStringKey
{
    Task Wait();

    Task Open();
}

public interface ISlowGrain : IGrainWithStringKey
{
    [ResponseTimeout("00:00:00.500")]
    Task<bool> WaitForCancellation(string probe, CancellationToken cancellationToken);

    Task<bool> WaitForCancellationDefault(string probe, CancellationToken cancellationToken);

    [ResponseTimeout("00:00:00.300")]
    Task Hang();

    Task Throw(string kind, string message);

    [OneWay]
    Task Fire(string probe, int delayMs);
}

public interface ITickerObserver : IGrainObserver
{
    Task OnTick(string source, long number);

    [OneWay]
    Task OnTickOneWay(string source, long number);
}

public interface IPublisherGrain : IGrainWithStringKey
{
    Task Subscribe(ITickerObserver observer);

    Task Unsubscribe(ITickerObserver observer);

    /// <summary>Pushes to every subscriber; returns how many are left.</summary>
    Task<int> Publish(long number);

    /// <summary>Calls one observer directly and reports how the call ended.</summary>
    Task<string> CallDirect(ITickerObserver observer, long number);

    /// <summary>One-way pushes <paramref name="count"/> ticks to every subscriber.</summary>
    Task PublishMany(long count);

    Task<int> SubscriberCount();
}
