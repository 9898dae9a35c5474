using System.Threading.Tasks.Sources;

namespace OrleansLsn.Waiting;

/// <summary>A waiter awaited through a <see cref="ValueTask{TResult}"/>: no Task, no timer, no CTS per wait.</summary>
internal sealed class AsyncWaiter : Waiter, IValueTaskSource<LsnWaitResult>
{
    private ManualResetValueTaskSourceCore<LsnWaitResult> _core;

    internal AsyncWaiter(IWaiterOwner owner, Lsn target, long startTimestamp)
        : base(target, startTimestamp)
    {
        Owner = owner;

        // Never run the awaiting code inline in the watcher loop or under a release.
        _core.RunContinuationsAsynchronously = true;
    }

    /// <summary>The tracker or view whose index holds this waiter, told when the caller cancels.</summary>
    internal IWaiterOwner Owner { get; }

    internal CancellationTokenRegistration Registration;

    internal ValueTask<LsnWaitResult> AsValueTask() => new(this, _core.Version);

    /// <summary>Registers <paramref name="cancellationToken"/> so that cancelling it tells the owner (which removes the waiter).</summary>
    internal CancellationTokenRegistration RegisterCancellation(CancellationToken cancellationToken) =>
        cancellationToken.UnsafeRegister(static (state, token) => ((AsyncWaiter)state!).Owner.Cancel((AsyncWaiter)state!, token), this);

    internal override void Complete(LsnWaitResult result)
    {
        Registration.Unregister();
        _core.SetResult(result);
    }

    internal void CompleteCanceled(CancellationToken cancellationToken)
    {
        Registration.Unregister();
        _core.SetException(new OperationCanceledException("The LSN wait was cancelled.", cancellationToken));
    }

    internal void CompleteFailed(Exception exception)
    {
        Registration.Unregister();
        _core.SetException(exception);
    }

    public LsnWaitResult GetResult(short token) => _core.GetResult(token);

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
