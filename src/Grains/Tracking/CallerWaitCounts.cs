namespace OrleansLsn.Tracking;

/// <summary>
/// Pending waits and notification requests per caller of one tracker grain, for
/// <c>OrleansLsn:Tracker:MaxPendingWaitersPerClient</c>. Counted on the grain's scheduler when a wait is registered,
/// uncounted on whatever thread the wait ends: under a flood the activation's continuations sit behind every queued call,
/// and a count that waited for them would refuse waits long gone. Thread-safe.
/// </summary>
internal sealed class CallerWaitCounts
{
    private readonly Lock _lock = new();
    private readonly Dictionary<GrainId, Entry> _callers = new();

    /// <summary>Whether <paramref name="caller"/> already has <paramref name="cap"/> pending; <paramref name="firstRefusal"/> is true once per episode at the cap (for one warning).</summary>
    internal bool AtCap(GrainId caller, int cap, out bool firstRefusal)
    {
        lock (_lock)
        {
            if (!_callers.TryGetValue(caller, out Entry? entry) || entry.Pending < cap)
            {
                firstRefusal = false;
                return false;
            }

            firstRefusal = !entry.Warned;
            entry.Warned = true;
            return true;
        }
    }

    /// <summary>Changes the count of <paramref name="caller"/>; a caller whose count drops below half of <paramref name="cap"/> may be warned about again.</summary>
    internal void Add(GrainId caller, int delta, int cap)
    {
        lock (_lock)
        {
            if (!_callers.TryGetValue(caller, out Entry? entry))
            {
                if (delta < 0)
                {
                    return; // forgotten by Clear (the activation is deactivating)
                }

                entry = new Entry();
                _callers[caller] = entry;
            }

            entry.Pending += delta;
            if (entry.Pending <= 0)
            {
                _callers.Remove(caller);
            }
            else if (entry.Pending < cap / 2)
            {
                entry.Warned = false;
            }
        }
    }

    /// <summary>Forgets every count.</summary>
    internal void Clear()
    {
        lock (_lock)
        {
            _callers.Clear();
        }
    }

    /// <summary>Awaits <paramref name="wait"/> off the grain's scheduler and uncounts <paramref name="caller"/> the moment it ends.</summary>
    internal async Task<LsnWaitResult> UncountWhenDoneAsync(ValueTask<LsnWaitResult> wait, GrainId caller, int cap)
    {
        try
        {
            return await wait.ConfigureAwait(false);
        }
        finally
        {
            Add(caller, -1, cap);
        }
    }

    private sealed class Entry
    {
        internal int Pending { get; set; }

        internal bool Warned { get; set; }
    }
}
