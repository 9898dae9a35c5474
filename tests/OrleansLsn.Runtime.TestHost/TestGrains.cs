using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OrleansLsn.Runtime.TestHost;

/// <summary>Lets tests see inside grains that run in the same process: named signals and counters.</summary>
public sealed class Probe
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<string>> _signals = new();
    private readonly ConcurrentDictionary<string, int> _counters = new();

    public Task<string> Signal(string name) => _signals.GetOrAdd(name, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public void Set(string name, string value) => _signals.GetOrAdd(name, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(value);

    public int Increment(string name) => _counters.AddOrUpdate(name, 1, (_, v) => v + 1);

    public int Count(string name) => _counters.GetValueOrDefault(name);
}

public sealed class EchoGrain : Grain, IEchoGrain
{
    public Task<string> Echo(string text) => Task.FromResult(text);

    public Task Ping() => Task.CompletedTask;

    public Task<int> Add(int a, int b) => Task.FromResult(a + b);

    public Task<Payload> Roundtrip(Payload payload) => Task.FromResult(payload with { Number = payload.Number + 1 });

    public Task<string> WhoAmI() => Task.FromResult(GetPrimaryKeyString());
}

public sealed class BadGrain : Grain, IBadGrain
{
    public Task Send(NotInContract value) => Task.CompletedTask;
}

public sealed class LifecycleGrain(Probe probe) : Grain, ILifecycleGrain
{
    private int _touches;
    private int _ticks;
    private IGrainTimer? _timer;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        probe.Increment($"activate:{GetPrimaryKeyString()}");
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        probe.Increment($"deactivate:{GetPrimaryKeyString()}");
        probe.Set($"deactivated:{GetPrimaryKeyString()}:{probe.Count($"deactivate:{GetPrimaryKeyString()}")}", reason.ReasonCode.ToString());
        return Task.CompletedTask;
    }

    public Task<int> Touch() => Task.FromResult(++_touches);

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public Task KeepAlive(TimeSpan time)
    {
        DelayDeactivation(time);
        return Task.CompletedTask;
    }

    public Task<int> StartTimer(TimeSpan period, bool keepAlive)
    {
        _timer?.Dispose();
        _timer = RegisterGrainTimer(
            _ =>
            {
                _ticks++;
                probe.Increment($"tick:{GetPrimaryKeyString()}");
                return Task.CompletedTask;
            },
            new GrainTimerCreationOptions(period, period) { KeepAlive = keepAlive });
        return Task.FromResult(_ticks);
    }

    public Task<int> TimerTicks() => Task.FromResult(_ticks);
}

public sealed class TurnGrain : Grain, ITurnGrain
{
    private int _inside;
    private int _max;
    private TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task<int> Work(int yields)
    {
        _inside++;
        _max = Math.Max(_max, _inside);
        for (int i = 0; i < yields; i++)
        {
            await Task.Yield();
        }

        _inside--;
        return _max;
    }

    public async Task Block()
    {
        _inside++;
        _max = Math.Max(_max, _inside);
        await _release.Task;
        _release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _inside--;
    }

    public Task Release()
    {
        _release.TrySetResult();
        return Task.CompletedTask;
    }

    public Task<int> MaxConcurrent() => Task.FromResult(_max);

    public async Task<string> CallSelf() =>
        "self:" + await GrainFactory.GetGrain<ITurnGrain>(GetPrimaryKeyString()).CallBack(GetPrimaryKeyString());

    public async Task<string> CallAround(string other) =>
        "around:" + await GrainFactory.GetGrain<ITurnGrain>(other).CallBack(GetPrimaryKeyString());

    public async Task<string> CallBack(string origin)
    {
        if (origin == GetPrimaryKeyString())
        {
            return "back:" + origin;
        }

        // Call the origin again: a cycle A → B → A.
        return await GrainFactory.GetGrain<ITurnGrain>(origin).MaxConcurrent() >= 0 ? "back:" + origin : "?";
    }
}

public sealed class SlowGrain(Probe probe) : Grain, ISlowGrain
{
    public Task<bool> WaitForCancellation(string probeName, CancellationToken cancellationToken) => Wait(probeName, cancellationToken);

    public Task<bool> WaitForCancellationDefault(string probeName, CancellationToken cancellationToken) => Wait(probeName, cancellationToken);

    public Task Hang() => Task.Delay(Timeout.Infinite);

    public Task Throw(string kind, string message) => kind switch
    {
        "invalid" => throw new InvalidOperationException(message),
        "argument" => throw new ArgumentOutOfRangeException("count", message),
        "custom" => throw new CustomGrainException(message),
        "async" => ThrowLaterAsync(message),
        _ => Task.CompletedTask,
    };

    public async Task Fire(string probeName, int delayMs)
    {
        await Task.Delay(delayMs);
        probe.Set(probeName, "fired");
    }

    private async Task<bool> Wait(string probeName, CancellationToken cancellationToken)
    {
        probe.Set(probeName + ":started", "yes");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return false;
        }
        catch (OperationCanceledException)
        {
            probe.Set(probeName + ":canceled", "yes");
            throw;
        }
    }

    private static async Task ThrowLaterAsync(string message)
    {
        await Task.Yield();
        throw new NotSupportedException(message);
    }
}

public sealed class CustomGrainException(string message) : Exception(message)
{
    public CustomGrainException()
        : this("custom")
    {
    }

    public CustomGrainException(string message, Exception inner)
        : this(message + inner.Message)
    {
    }
}

public sealed class PublisherGrain(ILogger<PublisherGrain> logger) : Grain, IPublisherGrain
{
    private readonly ObserverManager<ITickerObserver> _observers = new(TimeSpan.FromMinutes(5), logger);

    public Task Subscribe(ITickerObserver observer)
    {
        _observers.Subscribe(observer, observer);
        return Task.CompletedTask;
    }

    public Task Unsubscribe(ITickerObserver observer)
    {
        _observers.Unsubscribe(observer);
        return Task.CompletedTask;
    }

    public async Task<int> Publish(long number)
    {
        await _observers.Notify(o => o.OnTick(GetPrimaryKeyString(), number));
        return _observers.Count;
    }

    public async Task<string> CallDirect(ITickerObserver observer, long number)
    {
        try
        {
            await observer.OnTick(GetPrimaryKeyString(), number);
            return "ok";
        }
        catch (Exception e)
        {
            return e.GetType().Name;
        }
    }

    public Task PublishMany(long count)
    {
        for (long i = 0; i < count; i++)
        {
            long n = i;
            _observers.Notify(o => o.OnTickOneWay(GetPrimaryKeyString(), n));
        }

        return Task.CompletedTask;
    }

    public Task<int> SubscriberCount() => Task.FromResult(_observers.Count);
}

/// <summary>Registers the test grains.</summary>
public static class TestGrainRegistration
{
    public static ISiloBuilder AddTestGrains(this ISiloBuilder builder) => builder
        .AddGrain<EchoGrain>()
        .AddGrain<LifecycleGrain>()
        .AddGrain<KeepAliveGrain>()
        .AddGrain<TurnGrain>()
        .AddGrain<ReentrantTurnGrain>()
        .AddGrain<SlowGrain>()
        .AddGrain<PublisherGrain>();
}
