using System.Reflection;
using System.Runtime.ExceptionServices;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// A grain factory over the real cluster client that counts what the code under test asks for, and can answer tracker
/// waits itself instead of the real grain: with an exception (as a silo failure does) or with a result (as an
/// activation that stops mid-wait does).
/// </summary>
public class InterceptingGrainFactory : DispatchProxy
{
    private IGrainFactory _inner = null!;
    private Func<int, object?> _answerWait = _ => null;
    private int _getGrainCalls;
    private int _waitCalls;
    private int _watchCalls;
    private volatile Func<Exception?>? _failWatch;

    /// <summary>Calls of any <see cref="IGrainFactory"/> method.</summary>
    public int GetGrainCalls => Volatile.Read(ref _getGrainCalls);

    /// <summary>Calls of <see cref="ILsnTrackerGrain.RequestAndAwait"/> through grains from this factory, failed ones included.</summary>
    public int WaitCalls => Volatile.Read(ref _waitCalls);

    /// <summary>Calls of <see cref="ILsnTrackerGrain.WatchReplay"/> through grains from this factory, failed ones included.</summary>
    public int WatchCalls => Volatile.Read(ref _watchCalls);

    /// <summary>While set, each <see cref="ILsnTrackerGrain.WatchReplay"/> fails with the exception it returns (null: the real call).</summary>
    public Func<Exception?>? FailWatch
    {
        get => _failWatch;
        set => _failWatch = value;
    }

    /// <summary>
    /// Wraps <paramref name="inner"/>; <paramref name="answerWait"/> gets the 1-based number of a wait call and returns
    /// the exception to fail it with, the <see cref="LsnWaitResult"/> to answer it with, or null to call the real grain.
    /// </summary>
    public static (IGrainFactory Factory, InterceptingGrainFactory Interceptor) Create(IGrainFactory inner, Func<int, object?>? answerWait = null)
    {
        IGrainFactory factory = Create<IGrainFactory, InterceptingGrainFactory>();
        var interceptor = (InterceptingGrainFactory)(object)factory;
        interceptor._inner = inner;
        interceptor._answerWait = answerWait ?? (_ => null);
        return (factory, interceptor);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        Interlocked.Increment(ref _getGrainCalls);
        object? result = Forward(targetMethod, _inner, args);
        return result is ILsnTrackerGrain tracker ? TrackerInterceptor.Wrap(tracker, this) : result;
    }

    internal static object? Forward(MethodInfo method, object target, object?[]? args)
    {
        try
        {
            return method.Invoke(target, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }

    internal object? NextWait() => _answerWait(Interlocked.Increment(ref _waitCalls));

    internal Exception? NextWatch()
    {
        Interlocked.Increment(ref _watchCalls);
        return _failWatch?.Invoke();
    }
}

/// <summary>An <see cref="ILsnTrackerGrain"/> that forwards to the real grain unless its factory answers the wait.</summary>
public class TrackerInterceptor : DispatchProxy
{
    private ILsnTrackerGrain _inner = null!;
    private InterceptingGrainFactory _owner = null!;

    internal static ILsnTrackerGrain Wrap(ILsnTrackerGrain inner, InterceptingGrainFactory owner)
    {
        ILsnTrackerGrain proxy = Create<ILsnTrackerGrain, TrackerInterceptor>();
        var interceptor = (TrackerInterceptor)(object)proxy;
        interceptor._inner = inner;
        interceptor._owner = owner;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (targetMethod.Name == nameof(ILsnTrackerGrain.WatchReplay) && _owner.NextWatch() is { } watchFailure)
        {
            return Task.FromException<ReplayViewState>(watchFailure);
        }

        if (targetMethod.Name == nameof(ILsnTrackerGrain.RequestAndAwait))
        {
            switch (_owner.NextWait())
            {
                case Exception failure:
                    return Task.FromException<LsnWaitResult>(failure);
                case LsnWaitResult result:
                    return Task.FromResult(result);
            }
        }

        return InterceptingGrainFactory.Forward(targetMethod, _inner, args);
    }
}
