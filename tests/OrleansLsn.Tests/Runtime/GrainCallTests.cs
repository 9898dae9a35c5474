using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class GrainCallTests
{
    [Fact(Timeout = 60_000)]
    public async Task Call_ReturnsResult_OverRealTcp()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        IEchoGrain grain = client.GetGrain<IEchoGrain>("a");

        Assert.Equal("hello", await grain.Echo("hello"));
        Assert.Equal(5, await grain.Add(2, 3));
        Assert.Equal("a", await grain.WhoAmI());
        await grain.Ping();
    }

    [Fact(Timeout = 60_000)]
    public async Task ContractType_RoundTrips_WithNestedValues()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        var payload = new Payload("p", 41, [1, 2, 3], TimeSpan.FromSeconds(2), Color.Green);

        Payload result = await client.GetGrain<IEchoGrain>("a").Roundtrip(payload);

        Assert.Equal(payload with { Number = 42 }, result with { Items = payload.Items });
        Assert.Equal(payload.Items, result.Items);
    }

    [Fact(Timeout = 60_000)]
    public async Task ManyConcurrentCalls_AllComplete()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();

        int[] results = await Task.WhenAll(Enumerable.Range(0, 2000).Select(i => client.GetGrain<IEchoGrain>((i % 37).ToString(System.Globalization.CultureInfo.InvariantCulture)).Add(i, 1)));

        Assert.Equal(Enumerable.Range(1, 2000), results);
    }
}
