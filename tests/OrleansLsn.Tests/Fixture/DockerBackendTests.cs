using System.Diagnostics;
using Docker.DotNet;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Networks;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Fixture;

/// <summary>Choosing the backend; the owner labels of the Docker backend.</summary>
public sealed class DockerBackendTests
{
    private static readonly Task<(DockerEngine? Engine, string? Error)> NoEngine =
        Task.FromResult<(DockerEngine?, string?)>((null, "unix:///nowhere/docker.sock: no socket"));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Choose_DockerAskedButNoEngine_FailsAtOnceSayingWhyAndWhatToDo()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => TestPostgres.ChooseAsync("docker", externalServersGiven: false, () => NoEngine));

        Assert.Contains("ORLEANSLSN_TEST_BACKEND=docker", ex.Message);
        Assert.Contains("no socket", ex.Message);
        Assert.Contains("ORLEANSLSN_TEST_BACKEND=local", ex.Message);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("auto")]
    public async Task Choose_DefaultWithoutEngine_FallsBackToLocalSayingWhy(string? setting)
    {
        TestBackendChoice choice = await TestPostgres.ChooseAsync(setting, externalServersGiven: false, () => NoEngine);

        Assert.Equal(TestBackend.Local, choice.Backend);
        Assert.Contains("no Docker engine answers", choice.Reason);
        Assert.Contains("no socket", choice.Reason);
    }

    [Fact]
    public async Task Choose_LocalOrExternal_NeverAsksDocker()
    {
        Task<(DockerEngine?, string?)> Fail() => throw new InvalidOperationException("Docker must not be asked");

        Assert.Equal(TestBackend.Local, (await TestPostgres.ChooseAsync("LOCAL", externalServersGiven: true, Fail)).Backend);
        Assert.Equal(TestBackend.External, (await TestPostgres.ChooseAsync("external", externalServersGiven: true, Fail)).Backend);
        Assert.Equal(TestBackend.External, (await TestPostgres.ChooseAsync(null, externalServersGiven: true, Fail)).Backend);
    }

    [Theory]
    [InlineData("podman")]
    [InlineData("external")]
    public async Task Choose_UnknownValueOrExternalWithoutServers_Fails(string setting)
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => TestPostgres.ChooseAsync(setting, externalServersGiven: false, () => NoEngine));
        Assert.Contains("ORLEANSLSN_TEST_BACKEND", ex.Message);
    }

    [Fact]
    public async Task Probe_NoEngineAtTheEndpoint_AnswersWithTheReasonQuickly()
    {
        var elapsed = Stopwatch.StartNew();
        (DockerEngine? engine, string? error) = await DockerEngine.ProbeAsync(new Uri($"unix:///tmp/orleanslsn-no-docker-{Guid.NewGuid():N}.sock"), TimeSpan.FromSeconds(5));

        Assert.Null(engine);
        Assert.Contains("no socket", error);
        Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(2), $"the probe took {elapsed.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public void OwnerLabel_OfThisProcessIsAlive_OfADeadOrUnreadableOneIsNot()
    {
        Assert.True(DockerLeftovers.IsAliveOrForeign(DockerLeftovers.CurrentOwner));
        Assert.False(DockerLeftovers.IsAliveOrForeign($"{Environment.MachineName}/0/0"));
        Assert.False(DockerLeftovers.IsAliveOrForeign("garbage"));
        Assert.False(DockerLeftovers.IsAliveOrForeign(null));
        // A PID reused by another process has another start time.
        Assert.False(DockerLeftovers.IsAliveOrForeign($"{Environment.MachineName}/{Environment.ProcessId}/1"));
        // Another host's run is not ours to judge.
        Assert.True(DockerLeftovers.IsAliveOrForeign("some-other-host/0/0"));
    }
}

/// <summary>
/// What only the Docker backend has: leftovers of a dead run removed by label at the next start. Alone, after the
/// parallel tests: every cluster start sweeps too, and a concurrent sweep would take the test's leftovers first.
/// </summary>
[Collection(StandbyControlCollection.Name)]
public sealed class DockerLeftoverTests(PostgresFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Sweep_RemovesContainersAndNetworksOfADeadRun_KeepsThoseOfLiveRuns()
    {
        DockerEngine engine = RequireDockerBackend();
        // What a killed run leaves: a network and a container whose owner label names a process that is gone (PID 0 is
        // never a user process).
        string id = $"dead-{Guid.NewGuid().ToString("N")[..8]}";
        var labels = new Dictionary<string, string>(DockerLeftovers.Labels(id)) { [DockerLeftovers.OwnerLabel] = $"{Environment.MachineName}/0/0" };
        INetwork network = new NetworkBuilder().WithName($"orleanslsn-test-{id}").WithLabel(labels).Build();
        IContainer container = new ContainerBuilder(TestPostgres.Image.Image)
            .WithNetwork(network)
            .WithLabel(labels)
            .WithEntrypoint("sleep", "300")
            .Build();
        await network.CreateAsync(Ct);
        await container.StartAsync(Ct);
        try
        {
            using DockerClient docker = engine.CreateClient();
            Assert.NotEmpty(await DockerLeftovers.FindAsync(docker, id, Ct));

            IReadOnlyList<string> removed = await DockerLeftovers.SweepAsync(docker, Ct);

            Assert.Empty(await DockerLeftovers.FindAsync(docker, id, Ct));
            Assert.Contains(removed, r => r.StartsWith("network orleanslsn-test-" + id, StringComparison.Ordinal));
            // The fixture's cluster belongs to this live run: untouched.
            Assert.Equal(1, await PostgresFixture.ScalarAsync<int>(fixture.PrimaryConnectionString, "select 1", Ct));
            Assert.Equal(1, await PostgresFixture.ScalarAsync<int>(fixture.Standby2ConnectionString, "select 1", Ct));
        }
        finally
        {
            await DisposeQuietlyAsync(container.DisposeAsync);
            await DisposeQuietlyAsync(network.DisposeAsync);
        }
    }

    private DockerEngine RequireDockerBackend()
    {
        Assert.SkipWhen(fixture.Backend.Engine is null, $"Docker backend only; this run uses {fixture.Backend}.");
        return fixture.Backend.Engine!;
    }

    private static async Task DisposeQuietlyAsync(Func<ValueTask> dispose)
    {
        try
        {
            await dispose();
        }
        catch (DockerApiException)
        {
            // Already removed by the sweep.
        }
    }
}
