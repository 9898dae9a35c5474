using System.Diagnostics;

namespace OrleansLsn.Waiting;

/// <summary>
/// The waiters of one tracker (or one client replay view), indexed twice:
/// <list type="bullet">
/// <item>by target LSN in a treap, so an advance to replay LSN R detaches every waiter with target &lt;= R with one
/// split, in O(released + log n), without looking at any waiter it does not release;</item>
/// <item>by deadline in a hashed timing wheel of doubly linked slot lists, so expiry finds due waiters without a scan
/// and release unlinks a waiter from its slot in O(1).</item>
/// </list>
/// Not thread-safe: the owner serialises every call (its lock). Invariant: a node is in both structures or in
/// neither, and <see cref="Count"/> is the number of nodes in them.
/// </summary>
internal sealed class WaiterIndex
{
    /// <summary>Slots in the wheel; a power of two. With 1 ms ticks one round is 4.1 s, longer than the default timeout.</summary>
    internal const int SlotCount = 4096;
    private const int SlotMask = SlotCount - 1;

    private readonly Waiter?[] _slots = new Waiter?[SlotCount];
    private readonly Stack<Waiter> _stack = new();
    private Waiter? _root;
    private long _nextSequence;
    private long _lastExpiredTick;

    /// <summary>Waiters currently indexed.</summary>
    internal int Count { get; private set; }

    /// <summary>The wheel's notion of "now" that expiry has been processed up to.</summary>
    internal long LastExpiredTick => _lastExpiredTick;

    /// <summary>Creates an index whose wheel starts at <paramref name="startTick"/>.</summary>
    internal WaiterIndex(long startTick = 0) => _lastExpiredTick = startTick;

    /// <summary>Adds a waiter that expires once the wheel reaches <paramref name="deadlineTick"/>. O(log n) expected.</summary>
    internal void Add(Waiter waiter, long deadlineTick)
    {
        Debug.Assert(!waiter.InIndex, "a waiter is added once");
        waiter.Sequence = _nextSequence++;
        waiter.Left = waiter.Right = null;
        _root = Insert(_root, waiter);

        // A deadline that is already due goes to the next slot processed, so it still expires on the next tick.
        waiter.DeadlineTick = Math.Max(deadlineTick, _lastExpiredTick + 1);
        LinkIntoSlot(waiter);
        waiter.InIndex = true;
        Count++;
    }

    /// <summary>Moves the wheel's clock to <paramref name="nowTick"/>; only valid while the index is empty.</summary>
    internal void ResetClock(long nowTick)
    {
        Debug.Assert(Count == 0, "the clock may jump only when no deadline is pending");
        _lastExpiredTick = nowTick;
    }

    /// <summary>Removes one waiter (cancelled or disposed). Returns false if it had already left. O(log n) expected.</summary>
    internal bool Remove(Waiter waiter)
    {
        if (!waiter.InIndex)
        {
            return false;
        }

        _root = Delete(_root, waiter);
        UnlinkFromSlot(waiter);
        waiter.InIndex = false;
        Count--;
        return true;
    }

    /// <summary>
    /// Detaches every waiter whose target is at most <paramref name="replay"/> and returns them as a list linked
    /// through <see cref="Waiter.Right"/>. O(released + log n) expected.
    /// </summary>
    internal Waiter? ReleaseUpTo(Lsn replay)
    {
        (Waiter? released, Waiter? kept) = Split(_root, replay);
        _root = kept;
        if (released is null)
        {
            return null;
        }

        // Flatten the detached subtree into a list, unlinking each node from the wheel on the way.
        Waiter? head = null;
        Stack<Waiter> stack = _stack;
        stack.Push(released);
        while (stack.Count > 0)
        {
            Waiter node = stack.Pop();
            if (node.Left is not null)
            {
                stack.Push(node.Left);
            }

            if (node.Right is not null)
            {
                stack.Push(node.Right);
            }

            UnlinkFromSlot(node);
            node.InIndex = false;
            node.Left = null;
            node.Right = head;
            head = node;
            Count--;
        }

        return head;
    }

    /// <summary>Detaches every waiter (shutdown, or a primary where everything counts as replicated).</summary>
    internal Waiter? ReleaseAll() => _root is null ? null : ReleaseUpTo(Lsn.MaxValue);

    /// <summary>
    /// Advances the wheel to <paramref name="nowTick"/> and detaches every waiter whose deadline tick has been reached,
    /// as a list linked through <see cref="Waiter.Right"/>. Visits only the slots between the last call and now (all
    /// slots at most once), and in them only waiters that share the slot.
    /// </summary>
    internal Waiter? ExpireUpTo(long nowTick)
    {
        if (nowTick <= _lastExpiredTick)
        {
            return null;
        }

        Waiter? head = null;
        long from = _lastExpiredTick + 1;
        long slotsToVisit = Math.Min(nowTick - _lastExpiredTick, SlotCount);
        for (long i = 0; i < slotsToVisit; i++)
        {
            int slot = (int)((from + i) & SlotMask);
            Waiter? node = _slots[slot];
            while (node is not null)
            {
                Waiter? next = node.WheelNext;
                if (node.DeadlineTick <= nowTick)
                {
                    _root = Delete(_root, node);
                    UnlinkFromSlot(node);
                    node.InIndex = false;
                    node.Left = null;
                    node.Right = head;
                    head = node;
                    Count--;
                }

                node = next;
            }
        }

        _lastExpiredTick = nowTick;
        return head;
    }

    /// <summary>The smallest pending target, if any. O(log n).</summary>
    internal Lsn? MinTarget() => Min()?.Target;

    /// <summary>The waiter with the smallest target (the oldest among equal ones), if any. O(log n).</summary>
    internal Waiter? Min()
    {
        Waiter? node = _root;
        if (node is null)
        {
            return null;
        }

        while (node.Left is not null)
        {
            node = node.Left;
        }

        return node;
    }

    private void LinkIntoSlot(Waiter waiter)
    {
        int slot = (int)(waiter.DeadlineTick & SlotMask);
        Waiter? head = _slots[slot];
        waiter.WheelPrev = null;
        waiter.WheelNext = head;
        if (head is not null)
        {
            head.WheelPrev = waiter;
        }

        _slots[slot] = waiter;
    }

    private void UnlinkFromSlot(Waiter waiter)
    {
        if (waiter.WheelPrev is not null)
        {
            waiter.WheelPrev.WheelNext = waiter.WheelNext;
        }
        else
        {
            int slot = (int)(waiter.DeadlineTick & SlotMask);
            Debug.Assert(ReferenceEquals(_slots[slot], waiter), "a node without predecessor heads its slot");
            _slots[slot] = waiter.WheelNext;
        }

        if (waiter.WheelNext is not null)
        {
            waiter.WheelNext.WheelPrev = waiter.WheelPrev;
        }

        waiter.WheelPrev = null;
        waiter.WheelNext = null;
    }

    private static Waiter Insert(Waiter? root, Waiter node)
    {
        // Split around the new key, then join: left + node + right, keeping heap order on Priority.
        if (root is null)
        {
            return node;
        }

        if (node.Priority > root.Priority)
        {
            (Waiter? less, Waiter? greater) = SplitByNode(root, node);
            node.Left = less;
            node.Right = greater;
            return node;
        }

        if (node.CompareTo(root) < 0)
        {
            root.Left = Insert(root.Left, node);
        }
        else
        {
            root.Right = Insert(root.Right, node);
        }

        return root;
    }

    private static Waiter? Delete(Waiter? root, Waiter node)
    {
        if (root is null)
        {
            Debug.Fail("a node marked InIndex must be in the treap");
            return null;
        }

        if (ReferenceEquals(root, node))
        {
            Waiter? merged = Merge(root.Left, root.Right);
            node.Left = node.Right = null;
            return merged;
        }

        if (node.CompareTo(root) < 0)
        {
            root.Left = Delete(root.Left, node);
        }
        else
        {
            root.Right = Delete(root.Right, node);
        }

        return root;
    }

    /// <summary>Splits into (keys &lt; node's key, keys &gt; node's key); keys are unique.</summary>
    private static (Waiter? Less, Waiter? Greater) SplitByNode(Waiter? root, Waiter node)
    {
        if (root is null)
        {
            return (null, null);
        }

        if (root.CompareTo(node) < 0)
        {
            (Waiter? less, Waiter? greater) = SplitByNode(root.Right, node);
            root.Right = less;
            return (root, greater);
        }
        else
        {
            (Waiter? less, Waiter? greater) = SplitByNode(root.Left, node);
            root.Left = greater;
            return (less, root);
        }
    }

    /// <summary>Splits into (targets &lt;= replay, targets &gt; replay).</summary>
    private static (Waiter? AtMost, Waiter? Above) Split(Waiter? root, Lsn replay)
    {
        if (root is null)
        {
            return (null, null);
        }

        if (root.Target <= replay)
        {
            (Waiter? atMost, Waiter? above) = Split(root.Right, replay);
            root.Right = atMost;
            return (root, above);
        }
        else
        {
            (Waiter? atMost, Waiter? above) = Split(root.Left, replay);
            root.Left = above;
            return (atMost, root);
        }
    }

    private static Waiter? Merge(Waiter? left, Waiter? right)
    {
        if (left is null)
        {
            return right;
        }

        if (right is null)
        {
            return left;
        }

        if (left.Priority > right.Priority)
        {
            left.Right = Merge(left.Right, right);
            return left;
        }

        right.Left = Merge(left, right.Left);
        return right;
    }
}
