using OrleansLsn.Runtime.Messaging;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>
/// The grains waiting on the current call, carried through awaits. The silo sets it for each turn; outgoing calls
/// copy it into their request so a callee can see a cycle back to a waiting grain (call-chain reentrancy).
/// </summary>
internal static class CallChainContext
{
    private static readonly AsyncLocal<GrainId[]?> Current = new();

    public static GrainId[] Chain => Current.Value ?? [];

    public static void Set(GrainId[]? chain) => Current.Value = chain;
}
