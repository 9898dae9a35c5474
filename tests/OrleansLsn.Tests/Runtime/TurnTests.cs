using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class TurnTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Fact(Timeout = 60_000)]
    public async Task NonReentrantGrain_RunsOneRequestAtATime_UnderConcurrency()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        ITurnGrain grain = client.GetGrain<ITurnGrain>("serial");

        int[] seen = await Task.WhenAll(Enumerable.Range(0, 300).Select(_ => grain.Work(5)));

        Assert.All(seen, max => Assert.Equal(1, max));
        Assert.Equal(1, await grain.MaxConcurrent());
    }

    [Fact(Timeout = 60_000)]
    public async Task AlwaysInterleave_RunsWhileARequestWaits_OthersStillQueue()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        ITurnGrain grain = client.GetGrain<ITurnGrain>("interleave");

        Task blocked = grain.Block();
        Task<int> queued = grain.Work(0);
        await Wait.ForAsync(grain.Release().ContinueWith(_ => 0, TaskScheduler.Default), Deadline, "[AlwaysInterleave] Release while Block waits");
        await Wait.ForAsync(blocked.ContinueWith(_ => 0, TaskScheduler.Default), Deadline, "Block after Release");

        Assert.Equal(1, await Wait.ForAsync(queued, Deadline, "the queued Work call"));
    }

    [Fact(Timeout = 60_000)]
    public async Task ReentrantGrain_InterleavesRequests()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        IReentrantGrain grain = client.GetGrain<IReentrantGrain>("r");

        Task waiting = grain.Wait();
        await grain.Open();

        await Wait.ForAsync(waiting.ContinueWith(_ => 0, TaskScheduler.Default), Deadline, "Wait released by an interleaved Open");
        Assert.True(waiting.IsCompletedSuccessfully);
    }

    [Fact(Timeout = 60_000)]
    public async Task SelfCall_AndCycle_DoNotDeadlock()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();

        Assert.Equal("self:back:a", await Wait.ForAsync(client.GetGrain<ITurnGrain>("a").CallSelf(), Deadline, "self call"));
        Assert.Equal("around:back:a", await Wait.ForAsync(client.GetGrain<ITurnGrain>("a").CallAround("b"), Deadline, "A → B → A"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Cycle_WithoutCallChainReentrancy_TimesOutAsInOrleans()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync(options: o =>
        {
            o.AllowCallChainReentrancy = false;
            o.ResponseTimeout = TimeSpan.FromMilliseconds(400);
        });
        await using ClusterClient client = await silo.ConnectAsync();

        await Assert.ThrowsAsync<TimeoutException>(() => client.GetGrain<ITurnGrain>("x").CallAround("y"));
    }
}
