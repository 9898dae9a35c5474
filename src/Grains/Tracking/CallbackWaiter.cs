using OrleansLsn.Waiting;

namespace OrleansLsn.Tracking;

/// <summary>
/// A waiter that calls a callback once, on the thread pool. Disposing it before it fires withdraws it without a call.
/// </summary>
internal sealed class CallbackWaiter : Waiter, IDisposable, IThreadPoolWorkItem
{
    private readonly Action<LsnWaitResult> _callback;
    private LsnWaitResult? _result;

    internal CallbackWaiter(LsnTracker owner, Lsn target, long startTimestamp, Action<LsnWaitResult> callback)
        : base(target, startTimestamp)
    {
        Owner = owner;
        _callback = callback;
    }

    /// <summary>The tracker that indexes this waiter.</summary>
    internal LsnTracker Owner { get; }

    internal override void Complete(LsnWaitResult result)
    {
        _result = result;
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    void IThreadPoolWorkItem.Execute()
    {
        try
        {
            _callback(_result!);
        }
#pragma warning disable CA1031 // A subscriber's exception must never reach the tracker; it is logged.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Owner.OnCallbackFailed(ex);
        }
    }

    public void Dispose() => Owner.Withdraw(this);
}
