using System.Diagnostics;
using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class CallSemanticsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Fact(Timeout = 60_000)]
    public async Task ResponseTimeout_FailsTheCaller_AndCancelsTheCallee()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        Task<string> canceled = silo.Probe.Signal("t1:canceled");
        var watch = Stopwatch.StartNew();

        TimeoutException error = await Assert.ThrowsAsync<TimeoutException>(() => client.GetGrain<ISlowGrain>("s").WaitForCancellation("t1", CancellationToken.None));

        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));
        Assert.Contains("WaitForCancellation", error.Message, StringComparison.Ordinal);
        await Wait.ForAsync(canceled, Deadline, "the grain's token after the caller's timeout");
    }

    [Fact(Timeout = 60_000)]
    public async Task CallerCancellation_ReachesTheCallee()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        using var cts = new CancellationTokenSource();
        Task<bool> call = client.GetGrain<ISlowGrain>("s").WaitForCancellationDefault("t2", cts.Token);
        await Wait.ForAsync(silo.Probe.Signal("t2:started"), Deadline, "the grain method started");

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await Wait.ForAsync(silo.Probe.Signal("t2:canceled"), Deadline, "the grain's token after the caller cancelled");
    }

    [Fact(Timeout = 60_000)]
    public async Task AlreadyCancelledToken_FailsWithoutSending()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetGrain<ISlowGrain>("s").WaitForCancellationDefault("t3", new CancellationToken(true)));
        Assert.False(silo.Probe.Signal("t3:started").IsCompleted);
    }

    [Fact(Timeout = 60_000)]
    public async Task MethodTimeoutAttribute_OverridesTheDefault()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        var watch = Stopwatch.StartNew();

        await Assert.ThrowsAsync<TimeoutException>(() => client.GetGrain<ISlowGrain>("s").Hang());

        Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
    }

    [Fact(Timeout = 60_000)]
    public async Task Exceptions_KeepTypeMessageAndRemoteStack()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        ISlowGrain grain = client.GetGrain<ISlowGrain>("s");

        InvalidOperationException invalid = await Assert.ThrowsAsync<InvalidOperationException>(() => grain.Throw("invalid", "bad state"));
        Assert.Equal("bad state", invalid.Message);
        Assert.Contains(nameof(SlowGrain), invalid.StackTrace, StringComparison.Ordinal);

        ArgumentOutOfRangeException argument = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => grain.Throw("argument", "too many"));
        Assert.Equal("count", argument.ParamName);
        Assert.StartsWith("too many", argument.Message, StringComparison.Ordinal);

        NotSupportedException later = await Assert.ThrowsAsync<NotSupportedException>(() => grain.Throw("async", "after an await"));
        Assert.Equal("after an await", later.Message);

        // A type outside the caller's allowlist is not created from its name.
        RemoteGrainException custom = await Assert.ThrowsAsync<RemoteGrainException>(() => grain.Throw("custom", "mine"));
        Assert.Equal(typeof(CustomGrainException).FullName, custom.RemoteTypeName);
        Assert.Equal("mine", custom.RemoteMessage);

        await grain.Throw("none", string.Empty);
    }

    [Fact(Timeout = 60_000)]
    public async Task OneWayCall_ReturnsBeforeTheGrainRuns_AndStillRuns()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();
        Task<string> fired = silo.Probe.Signal("oneway");

        await client.GetGrain<ISlowGrain>("s").Fire("oneway", 1000);

        Assert.False(fired.IsCompleted, "the one-way call waited for the grain");
        Assert.Equal("fired", await Wait.ForAsync(fired, Deadline, "the one-way call ran"));
    }

    [Fact(Timeout = 60_000)]
    public async Task UnregisteredInterface_GivesAClearError()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient client = await silo.ConnectAsync();

        GrainMethodNotFoundException error = await Assert.ThrowsAsync<GrainMethodNotFoundException>(() => client.GetGrain<IUnregisteredGrain>("u").Nothing());

        Assert.Contains(typeof(IUnregisteredGrain).FullName!, error.Message, StringComparison.Ordinal);
        Assert.Equal(3, await client.GetGrain<IEchoGrain>("e").Add(1, 2));
    }

    [Fact]
    public void InterfaceWithATypeOutsideTheContract_IsRefusedAtFirstUse()
    {
        var options = new ClientOptions { ClusterSecret = SiloHarness.Secret };
        options.Gateways.Add("127.0.0.1:1");
        var client = new ClusterClient(Microsoft.Extensions.Options.Options.Create(options), new EmptyServices());

        ArgumentException error = Assert.Throws<ArgumentException>(() => client.GetGrain<IBadGrain>("b"));

        Assert.Contains(nameof(NotInContract), error.Message, StringComparison.Ordinal);
        Assert.Contains("GenerateSerializer", error.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task SiloWithAGrainOutsideTheContract_FailsToStart()
    {
        ArgumentException error = await Assert.ThrowsAsync<ArgumentException>(() => SiloHarness.StartAsync(silo => silo.AddGrain<BadGrain>()));

        Assert.Contains(nameof(NotInContract), error.Message, StringComparison.Ordinal);
    }
}

internal sealed class EmptyServices : IServiceProvider
{
    public object? GetService(Type serviceType) => null;
}
