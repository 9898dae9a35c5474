namespace OrleansLsn.Waiting;

/// <summary>Whoever indexes an <see cref="AsyncWaiter"/>: told when its caller cancels, so the waiter leaves the index at once.</summary>
internal interface IWaiterOwner
{
    /// <summary>Removes <paramref name="waiter"/> if it is still indexed and completes it as cancelled; else does nothing.</summary>
    void Cancel(AsyncWaiter waiter, CancellationToken cancellationToken);
}
