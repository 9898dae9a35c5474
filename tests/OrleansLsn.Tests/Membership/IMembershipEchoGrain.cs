namespace OrleansLsn.Tests.Membership;

/// <summary>A tiny grain for the cluster-over-PostgreSQL test: answers with the text and the silo that served it.</summary>
[Alias("OrleansLsn.Tests.Membership.IMembershipEchoGrain")]
public interface IMembershipEchoGrain : IGrainWithStringKey
{
    [Alias("Echo")]
    Task<string> Echo(string text);
}
