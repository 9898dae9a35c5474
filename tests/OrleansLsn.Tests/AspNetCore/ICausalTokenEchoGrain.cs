using OrleansLsn.Client;

namespace OrleansLsn.Tests.AspNetCore;

/// <summary>A grain that answers with the causal token its call carried in Orleans' RequestContext.</summary>
[Alias("OrleansLsn.Tests.AspNetCore.ICausalTokenEchoGrain")]
public interface ICausalTokenEchoGrain : IGrainWithStringKey
{
    [Alias("Echo")]
    Task<string> Echo();
}

/// <summary>Serves <see cref="ICausalTokenEchoGrain"/>.</summary>
public sealed class CausalTokenEchoGrain : Grain, ICausalTokenEchoGrain
{
    public Task<string> Echo() => Task.FromResult(CausalTokenContext.Current?.Format() ?? "none");
}
