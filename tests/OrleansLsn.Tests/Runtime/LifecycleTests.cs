using OrleansLsn.Runtime;
using OrleansLsn.Runtime.Messaging;
using OrleansLsn.Runtime.TestHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class LifecycleTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static Task<SiloHarness> StartWithFastCollection() => SiloHarness.StartAsync(silo => silo.ConfigureGrainCollection(o =>
    {
        o.CollectionAge = TimeSpan.FromMilliseconds(300);
        o.CollectionQuantum = TimeSpan.FromMilliseconds(100);
    }));

    [Fact(Timeout = 60_000)]
    public async Task ConcurrentFirstCalls_ActivateOnce_AndSeeOneState()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        ILifecycleGrain grain = client.GetGrain<ILifecycleGrain>("once");

        int[] touches = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => grain.Touch()));

        Assert.Equal(1, silo.Probe.Count("activate:once"));
        Assert.Equal(Enumerable.Range(1, 100), touches.Order());
    }

    [Fact(Timeout = 60_000)]
    public async Task IdleActivation_IsDeactivated_ThenReactivatedWithFreshState()
    {
        await using SiloHarness silo = await StartWithFastCollection();
        await using ClusterClient client = await silo.ConnectAsync();
        ILifecycleGrain grain = client.GetGrain<ILifecycleGrain>("idle");
        Task<string> deactivated = silo.Probe.Signal("deactivated:idle:1");

        Assert.Equal(1, await grain.Touch());
        Assert.Equal(2, await grain.Touch());

        Assert.Equal(nameof(DeactivationReasonCode.ActivationIdle), await Wait.ForAsync(deactivated, Deadline, "idle collection of 'idle'"));
        Assert.Equal(1, await grain.Touch());
        Assert.Equal(2, silo.Probe.Count("activate:idle"));
    }

    [Fact(Timeout = 60_000)]
    public async Task KeepAliveGrain_AndDelayedDeactivation_SurviveIdleCollection()
    {
        await using SiloHarness silo = await StartWithFastCollection();
        await using ClusterClient client = await silo.ConnectAsync();
        await client.GetGrain<IKeepAliveGrain>("kept").Touch();
        await client.GetGrain<ILifecycleGrain>("delayed").KeepAlive(TimeSpan.FromMinutes(5));
        ILifecycleGrain witness = client.GetGrain<ILifecycleGrain>("witness");

        // Two idle collections of another grain, each well past the collection age of the kept ones.
        for (int round = 1; round <= 2; round++)
        {
            Task<string> collected = silo.Probe.Signal($"deactivated:witness:{round}");
            await witness.Touch();
            await Wait.ForAsync(collected, Deadline, $"idle collection {round} of the witness grain");
        }

        Assert.True(silo.Silo.Runtime.Catalog.TryGet(new GrainId(typeof(KeepAliveGrain).FullName!, "kept"), out _), "the [KeepAlive] grain was collected");
        Assert.Equal(0, silo.Probe.Count("deactivate:delayed"));
        Assert.Equal(1, silo.Probe.Count("activate:delayed"));
    }

    [Fact(Timeout = 60_000)]
    public async Task DeactivateOnIdle_DeactivatesAfterTheCall()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        ILifecycleGrain grain = client.GetGrain<ILifecycleGrain>("asked");
        Task<string> deactivated = silo.Probe.Signal("deactivated:asked:1");

        await grain.Touch();
        await grain.Deactivate();

        Assert.Equal(nameof(DeactivationReasonCode.ApplicationRequested), await Wait.ForAsync(deactivated, Deadline, "DeactivateOnIdle"));
        Assert.Equal(1, await grain.Touch());
    }

    [Fact(Timeout = 60_000)]
    public async Task KeepAliveTimer_Ticks_AndKeepsTheGrainActive_WhileAPlainTimerDoesNot()
    {
        await using SiloHarness silo = await StartWithFastCollection();
        await using ClusterClient client = await silo.ConnectAsync();
        await client.GetGrain<ILifecycleGrain>("ticking").StartTimer(TimeSpan.FromMilliseconds(50), keepAlive: true);
        Task<string> plainCollected = silo.Probe.Signal("deactivated:plain:1");
        await client.GetGrain<ILifecycleGrain>("plain").StartTimer(TimeSpan.FromMilliseconds(50), keepAlive: false);

        await Wait.ForAsync(plainCollected, Deadline, "collection of the grain whose timer does not keep it alive");
        await Wait.UntilAsync(() => silo.Probe.Count("tick:ticking") >= 10, Deadline, () => $"ticks: {silo.Probe.Count("tick:ticking")}");

        Assert.Equal(0, silo.Probe.Count("deactivate:ticking"));
        Assert.True(await client.GetGrain<ILifecycleGrain>("ticking").TimerTicks() >= 10);
    }

    [Fact(Timeout = 60_000)]
    public async Task SiloShutdown_DeactivatesGrains_WithShuttingDown()
    {
        SiloHarness silo = await SiloHarness.StartAsync();
        Task<string> deactivated;
        await using (ClusterClient client = await silo.ConnectAsync())
        {
            deactivated = silo.Probe.Signal("deactivated:shutdown:1");
            await client.GetGrain<ILifecycleGrain>("shutdown").Touch();
        }

        await silo.DisposeAsync();

        Assert.Equal(nameof(DeactivationReasonCode.ShuttingDown), await Wait.ForAsync(deactivated, Deadline, "shutdown"));
    }
}
