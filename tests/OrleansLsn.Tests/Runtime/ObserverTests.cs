using System.Collections.Concurrent;
using System.Diagnostics;
using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class ObserverTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Fact(Timeout = 60_000)]
    public async Task Push_ReachesTheClientsObserver()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        var ticker = new Ticker();
        IPublisherGrain publisher = client.GetGrain<IPublisherGrain>("push");
        await publisher.Subscribe(client.CreateObjectReference<ITickerObserver>(ticker));
        Task<long> pushed = ticker.Next();

        Assert.Equal(1, await publisher.Publish(7));

        Assert.Equal(7, await Wait.ForAsync(pushed, Deadline, "the push"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Unsubscribe_StopsPushes_ToThatObserverOnly()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        var first = new Ticker();
        var second = new Ticker();
        ITickerObserver firstRef = client.CreateObjectReference<ITickerObserver>(first);
        IPublisherGrain publisher = client.GetGrain<IPublisherGrain>("unsub");
        await publisher.Subscribe(firstRef);
        await publisher.Subscribe(client.CreateObjectReference<ITickerObserver>(second));
        Assert.Equal(2, await publisher.Publish(1));

        await publisher.Unsubscribe(firstRef);
        Assert.Equal(1, await publisher.Publish(2));

        // Publish awaits every observer's call, so by now the first one would have had its push.
        Assert.Equal([1], first.Received);
        Assert.Equal([1, 2], second.Received);
    }

    [Fact(Timeout = 60_000)]
    public async Task CallToAGoneClient_FailsFast_AndTheObserverIsDropped()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient caller = await silo.ConnectAsync();
        ClusterClient gone = await silo.ConnectAsync();
        ITickerObserver goneRef = gone.CreateObjectReference<ITickerObserver>(new Ticker());
        IPublisherGrain publisher = caller.GetGrain<IPublisherGrain>("gone");
        await publisher.Subscribe(goneRef);
        Guid goneId = gone.ClientId;

        await gone.DisposeAsync();
        await Wait.UntilAsync(() => !silo.Silo.Runtime.IsClientConnected(goneId), Deadline, () => "the silo noticed the client left");
        var watch = Stopwatch.StartNew();

        Assert.Equal(nameof(ClientNotAvailableException), await publisher.CallDirect(goneRef, 1));
        Assert.Equal(0, await publisher.Publish(2));

        // The default response timeout is 30 s; both calls came back in a fraction of it.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact(Timeout = 60_000)]
    public async Task CallInFlight_FailsFast_WhenTheClientDisconnects()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient caller = await silo.ConnectAsync();
        ClusterClient leaving = await silo.ConnectAsync();
        var stuck = new Ticker { Hold = new TaskCompletionSource() };
        ITickerObserver stuckRef = leaving.CreateObjectReference<ITickerObserver>(stuck);

        Task<long> arrived = stuck.Next();
        Task<string> call = caller.GetGrain<IPublisherGrain>("inflight").CallDirect(stuckRef, 1);
        await Wait.ForAsync(arrived, Deadline, "the observer call arrived and is being held");
        var watch = Stopwatch.StartNew();
        await leaving.DisposeAsync();

        Assert.Equal(nameof(ClientNotAvailableException), await Wait.ForAsync(call, Deadline, "the grain's call after its client left"));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact(Timeout = 60_000)]
    public async Task DeletedObjectReference_IsNotCalledAnymore()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        var ticker = new Ticker();
        ITickerObserver reference = client.CreateObjectReference<ITickerObserver>(ticker);
        IPublisherGrain publisher = client.GetGrain<IPublisherGrain>("deleted");
        Assert.Equal("ok", await publisher.CallDirect(reference, 1));

        client.DeleteObjectReference<ITickerObserver>(ticker);

        Assert.Equal(nameof(ClientNotAvailableException), await publisher.CallDirect(reference, 2));
        Assert.Equal([1], ticker.Received);
    }

    [Fact(Timeout = 60_000)]
    public async Task ClientReconnect_KeepsObserverReferencesValid()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using var proxy = new TcpFaultProxy("127.0.0.1", silo.Silo.EndPoint.Port);
        await using ClusterClient client = await silo.ConnectAsync(o =>
        {
            o.Gateways.Clear();
            o.Gateways.Add($"127.0.0.1:{proxy.Port}");
        });
        var ticker = new Ticker();
        IPublisherGrain publisher = client.GetGrain<IPublisherGrain>("reconnect");
        await publisher.Subscribe(client.CreateObjectReference<ITickerObserver>(ticker));
        Assert.Equal(1, await publisher.Publish(1));

        proxy.DropConnections();
        await Wait.UntilAsync(() => client.Reconnects >= 1 && client.IsConnected && silo.Silo.Runtime.IsClientConnected(client.ClientId), Deadline, () => $"reconnects {client.Reconnects}, connected {client.IsConnected}");

        Assert.Equal(1, await publisher.Publish(2));
        Assert.Equal([1, 2], ticker.Received);
    }

    [Fact(Timeout = 60_000)]
    public async Task ManyOneWayPushes_AllArrive()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        var ticker = new Ticker();
        IPublisherGrain publisher = client.GetGrain<IPublisherGrain>("many");
        await publisher.Subscribe(client.CreateObjectReference<ITickerObserver>(ticker));

        await publisher.PublishMany(5000);

        await Wait.UntilAsync(() => ticker.Count == 5000, Deadline, () => $"{ticker.Count} of 5000 one-way pushes");
        Assert.Equal(Enumerable.Range(0, 5000).Select(i => (long)i), ticker.Received.Order());
    }

    private sealed class Ticker : ITickerObserver
    {
        private readonly ConcurrentQueue<long> _received = new();
        private readonly ConcurrentQueue<TaskCompletionSource<long>> _waiters = new();
        private TaskCompletionSource<long> _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource? Hold { get; init; }

        public long[] Received => [.. _received];

        public int Count => _received.Count;

        public Task<long> Next() => _next.Task;

        public async Task OnTick(string source, long number)
        {
            _received.Enqueue(number);
            TaskCompletionSource<long> next = Interlocked.Exchange(ref _next, new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously));
            next.TrySetResult(number);
            if (Hold is not null)
            {
                await Hold.Task;
            }
        }

        public Task OnTickOneWay(string source, long number)
        {
            _received.Enqueue(number);
            return Task.CompletedTask;
        }
    }
}
