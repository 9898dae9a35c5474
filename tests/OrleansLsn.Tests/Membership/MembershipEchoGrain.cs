namespace OrleansLsn.Tests.Membership;

/// <summary>Serves <see cref="IMembershipEchoGrain"/>.</summary>
public sealed class MembershipEchoGrain : Grain, IMembershipEchoGrain
{
    public Task<string> Echo(string text) => Task.FromResult($"{text} from {RuntimeIdentity}");
}
