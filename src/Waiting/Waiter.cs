namespace OrleansLsn.Waiting;

/// <summary>
/// One pending wait: a node of the LSN-ordered treap and of a timing-wheel slot list at the same time (intrusive, so
/// a waiter costs one object). All link fields belong to <see cref="WaiterIndex"/> and are touched only under its
/// owner's lock (the tracker's in a silo, the replay view's in a client); <see cref="Complete"/> is called exactly once, by whoever removed the node from the index.
/// </summary>
internal abstract class Waiter
{
    internal Waiter(Lsn target, long startTimestamp)
    {
        Target = target;
        StartTimestamp = startTimestamp;
    }

    /// <summary>The LSN the waiter waits for.</summary>
    internal Lsn Target { get; }

    /// <summary>When the wait began (<see cref="TimeProvider.GetTimestamp"/>), for the duration metric.</summary>
    internal long StartTimestamp { get; }

    // Treap links. Sequence breaks ties between equal targets, so every key is unique and removal finds exactly this node.
    internal long Sequence;
    internal Waiter? Left;
    internal Waiter? Right;

    // Timing-wheel links (doubly linked, so release removes a node from its slot in O(1)).
    internal long DeadlineTick;
    internal Waiter? WheelPrev;
    internal Waiter? WheelNext;

    /// <summary>True while the node is in the index; only the code that clears it may complete the waiter.</summary>
    internal bool InIndex;

    /// <summary>
    /// Treap heap priority: the sequence through the SplitMix64 finaliser, a well-mixed pseudo-random value that costs no
    /// field and keeps the treap balanced even when targets arrive in increasing order.
    /// </summary>
    internal ulong Priority
    {
        get
        {
            ulong z = (ulong)Sequence + 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    /// <summary>Delivers the outcome. Called outside the owner's lock, once.</summary>
    internal abstract void Complete(LsnWaitResult result);

    /// <summary>Orders by (target, sequence).</summary>
    internal int CompareTo(Waiter other)
    {
        int c = Target.CompareTo(other.Target);
        return c != 0 ? c : Sequence.CompareTo(other.Sequence);
    }
}
