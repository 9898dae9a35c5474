namespace OrleansLsn.Runtime;

/// <summary>
/// Base class of grain implementations (Orleans: <c>Grain</c>). The runtime creates one instance per activation
/// (constructor injection works) and runs its requests one turn at a time on the activation's scheduler. Members of
/// this class are available from <see cref="OnActivateAsync"/> on, not in the constructor.
/// </summary>
public abstract class Grain
{
    private ActivationData? _activation;

    internal ActivationData Activation => _activation
        ?? throw new InvalidOperationException("The grain is not attached to an activation yet; grain members are available from OnActivateAsync on.");

    /// <summary>Creates grain references, from inside this grain.</summary>
    protected IGrainFactory GrainFactory => Activation.Runtime.GrainFactory;

    /// <summary>The services of the silo.</summary>
    protected IServiceProvider ServiceProvider => Activation.Runtime.Services;

    /// <summary>The grain's key.</summary>
    public string GetPrimaryKeyString() => Activation.GrainId.Key;

    /// <summary>Called once before the first request, as a turn of its own. A throw fails the activation and its queued requests.</summary>
    public virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Called once when the activation is removed, after its last request; the token fires at the deactivation timeout.</summary>
    public virtual Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Deactivates this activation once the current requests have finished.</summary>
    protected void DeactivateOnIdle() => Activation.RequestDeactivateOnIdle();

    /// <summary>Keeps this activation from being collected as idle for at least <paramref name="timeSpan"/>.</summary>
    protected void DelayDeactivation(TimeSpan timeSpan) => Activation.DelayDeactivation(timeSpan);

    /// <summary>
    /// Registers a timer whose callback runs as a turn of this activation (Orleans: <c>RegisterGrainTimer</c>). The next
    /// tick is scheduled when the callback's task completes. The timer stops when disposed or at deactivation.
    /// </summary>
    protected IGrainTimer RegisterGrainTimer(Func<CancellationToken, Task> callback, GrainTimerCreationOptions options)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return Activation.RegisterTimer(callback, options);
    }

    /// <summary>Registers a timer with a state argument.</summary>
    protected IGrainTimer RegisterGrainTimer<TState>(Func<TState, CancellationToken, Task> callback, TState state, GrainTimerCreationOptions options)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return Activation.RegisterTimer(ct => callback(state, ct), options);
    }

    /// <summary>Registers a timer with a due time and a period.</summary>
    protected IGrainTimer RegisterGrainTimer(Func<Task> callback, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return Activation.RegisterTimer(_ => callback(), new GrainTimerCreationOptions(dueTime, period));
    }

    internal void Attach(ActivationData activation) => _activation = activation;
}

/// <summary>Grain helpers (Orleans: <c>GrainExtensions</c>).</summary>
public static class GrainExtensions
{
    /// <summary>A reference to this grain as <typeparamref name="TGrainInterface"/>, to pass to other grains or clients.</summary>
    public static TGrainInterface AsReference<TGrainInterface>(this Grain grain)
        where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(grain);
        return grain.Activation.Runtime.GrainFactory.GetGrain<TGrainInterface>(grain.GetPrimaryKeyString());
    }
}
