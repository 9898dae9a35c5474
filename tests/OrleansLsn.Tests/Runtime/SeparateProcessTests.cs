using System.Diagnostics;
using System.Globalization;
using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class SeparateProcessTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact(Timeout = 60_000)]
    public async Task SiloInAnotherProcess_ServesCallsAndObservers()
    {
        await using TestHostProcess host = TestHostProcess.Start("silo", SiloHarness.Secret, "0");
        int port = int.Parse(host.WaitForLine("LISTENING ", Deadline)["LISTENING ".Length..], CultureInfo.InvariantCulture);

        await using ClusterClient client = await ClusterClient.ConnectAsync($"127.0.0.1:{port}", "dev", SiloHarness.Secret);
        Assert.Equal("across processes", await client.GetGrain<IEchoGrain>("x").Echo("across processes"));

        var received = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        IPublisherGrain publisher = client.GetGrain<IPublisherGrain>("p");
        await publisher.Subscribe(client.CreateObjectReference<ITickerObserver>(new Observer(received)));
        Assert.Equal(1, await publisher.Publish(42));
        Assert.Equal(42, await Wait.ForAsync(received.Task, Deadline, "a push from the silo process"));

        await Assert.ThrowsAsync<ClusterConnectionRefusedException>(() => ClusterClient.ConnectAsync($"127.0.0.1:{port}", "dev", "a-wrong-secret-of-enough-length"));
    }

    [Fact(Timeout = 60_000)]
    public async Task ClientInAnotherProcess_GetsPushes_AndItsDeathIsNoticedAtOnce()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient local = await silo.ConnectAsync();
        IPublisherGrain publisher = local.GetGrain<IPublisherGrain>("remote-client");
        await using TestHostProcess child = TestHostProcess.Start("client", silo.Gateway, SiloHarness.Secret, "remote-client");
        child.WaitForLine("SUBSCRIBED", Deadline);

        Assert.Equal(1, await publisher.Publish(5));
        child.WaitForLine("TICK 5", Deadline);

        child.Kill();
        await Wait.UntilAsync(() => silo.Silo.ConnectedClients == 1, Deadline, () => $"{silo.Silo.ConnectedClients} clients connected after the kill");
        var watch = Stopwatch.StartNew();

        Assert.Equal(0, await publisher.Publish(6));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the push to a dead client took {watch.Elapsed}");
    }

    private sealed class Observer(TaskCompletionSource<long> received) : ITickerObserver
    {
        public Task OnTick(string source, long number)
        {
            received.TrySetResult(number);
            return Task.CompletedTask;
        }

        public Task OnTickOneWay(string source, long number) => OnTick(source, number);
    }
}
