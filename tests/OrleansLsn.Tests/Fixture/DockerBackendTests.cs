using System.Diagnostics;
using Docker.DotNet;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Networks;
using Npgsql;
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
    public void ChooseImage_VersionOtherThanDebians_PicksItsLocalImage_AndNamesTheCommandThatBuildsIt()
    {
        var env = ("/repo/deploy/local-images.env", (string?)"orleanslsn-local/postgres:15");

        TestPostgresImage image = TestPostgres.ChooseImage(null, " 17 ", env);

        Assert.Equal("orleanslsn-local/postgres:17", image.Name);
        Assert.Equal("ORLEANSLSN_PG_VERSION=17", image.Source);
        Assert.Equal(17, image.Version);
        Assert.Equal("bash deploy/local-images.sh --pg 17", image.BuildCommand);
        Assert.True(image.IsLocalBuild);
    }

    [Fact]
    public void ChooseImage_NoVersionOrDebians_KeepsTheEnvFileImage_AnExplicitImageWinsButKeepsTheVersionToCheck()
    {
        var env = ("/repo/deploy/local-images.env", (string?)"orleanslsn-local/postgres:15");

        Assert.Equal(("orleanslsn-local/postgres:15", "/repo/deploy/local-images.env", (int?)null), Parts(TestPostgres.ChooseImage(null, null, env)));
        Assert.Equal(("orleanslsn-local/postgres:15", "/repo/deploy/local-images.env", (int?)15), Parts(TestPostgres.ChooseImage("", "15", env)));
        Assert.Equal((TestPostgres.DefaultImage, "default", (int?)null), Parts(TestPostgres.ChooseImage(null, null, null)));
        TestPostgresImage explicitImage = TestPostgres.ChooseImage("my/postgres:18", "18", env);
        Assert.Equal(("my/postgres:18", TestPostgres.ImageVariable, (int?)18), Parts(explicitImage));
        Assert.False(explicitImage.IsLocalBuild);
        Assert.Contains("ORLEANSLSN_PG_VERSION", Assert.Throws<InvalidOperationException>(() => TestPostgres.ChooseImage(null, "seventeen", env)).Message);

        static (string, string, int?) Parts(TestPostgresImage i) => (i.Name, i.Source, i.Version);
    }

    [Theory]
    [InlineData("data/", true, true)]
    [InlineData("data/PG_VERSION", false, true)]
    [InlineData("data/base/5/1259", false, true)]
    [InlineData("data/global/pg_control", false, true)]
    [InlineData("data/postgresql.auto.conf", false, true)]
    [InlineData("data/postmaster.pid", false, false)]
    [InlineData("data/postmaster.opts", false, false)]
    [InlineData("data/standby.signal", false, false)]
    [InlineData("data/pg_wal/", true, true)]
    [InlineData("data/pg_wal/archive_status/", true, true)]
    [InlineData("data/pg_wal/000000010000000000000001", false, false)]
    [InlineData("data/pg_wal/archive_status/000000010000000000000001.done", false, false)]
    [InlineData("data/pg_replslot/", true, true)]
    [InlineData("data/pg_replslot/some_slot/", true, false)]
    [InlineData("data/pg_replslot/some_slot/state", false, false)]
    [InlineData("data/pg_stat_tmp/global.stat", false, false)]
    [InlineData("data/base/pgsql_tmp/", true, false)]
    [InlineData("data/base/pgsql_tmp/pgsql_tmp123.0", false, false)]
    public void DockerBaseBackup_KeepsWhatTheLowLevelBackupCopies(string name, bool isDirectory, bool kept)
    {
        Assert.Equal(kept, DockerBaseBackup.Keep(name, isDirectory));
    }

    [Fact]
    public async Task DockerCluster_MissingLocalImage_FailsSayingWhichCommandBuildsIt()
    {
        (DockerEngine? engine, string? error) = await DockerEngine.ProbeAsync(TimeSpan.FromSeconds(5));
        Assert.SkipWhen(engine is null, $"needs a Docker engine: {error}");
        engine.ConfigureTestcontainers();
        TestPostgresImage image = TestPostgres.ChooseImage(null, "99", null);

        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => DockerTestPostgresCluster.StartAsync(
            new TestPostgresClusterOptions { Name = "missing-image", StandbyNames = ["standby"] }, engine, image, Ct));

        Assert.Contains("orleanslsn-local/postgres:99", ex.Message);
        Assert.Contains("bash deploy/local-images.sh --pg 99", ex.Message);
    }

    /// <summary>
    /// The Docker backend's cluster runs the version the run asked for (<c>ORLEANSLSN_PG_VERSION</c>, Debian's 15 when
    /// unset) and its standby, made by <c>pg_basebackup</c> or by a low-level base backup between containers, streams
    /// and replays.
    /// </summary>
    [Fact]
    public async Task DockerCluster_RunsTheAskedVersion_AndItsStandbyStreamsAndReplays()
    {
        TestBackendChoice backend = await TestPostgres.GetBackendAsync();
        Assert.SkipWhen(backend.Backend != TestBackend.Docker, $"Docker backend only; this run uses {backend}.");
        TestPostgresImage image = TestPostgres.Image;
        int expected = image.Version ?? TestPostgres.DebianVersion;
        await using ITestPostgresCluster cluster = await TestPostgres.StartClusterAsync(
            new TestPostgresClusterOptions { Name = "version", StandbyNames = ["eu-west"] }, Ct);
        string primary = cluster.Primary.ConnectionString;
        string standby = cluster.GetStandby("eu-west").ConnectionString;

        Assert.Equal(expected, await PostgresFixture.ScalarAsync<int>(primary, "select current_setting('server_version_num')::int / 10000", Ct));
        Assert.Equal(expected, await PostgresFixture.ScalarAsync<int>(standby, "select current_setting('server_version_num')::int / 10000", Ct));
        Assert.True(await PostgresFixture.ScalarAsync<bool>(standby, "select pg_is_in_recovery()", Ct), "the standby should be in recovery");
        string marker = Guid.NewGuid().ToString("N");
        await using (var conn = new NpgsqlConnection(primary))
        {
            await conn.OpenAsync(Ct);
            await using var create = new NpgsqlCommand($"create table version_probe as select '{marker}'::text as marker", conn);
            await create.ExecuteNonQueryAsync(Ct);
        }

        // The table and its row came in one transaction: once the standby has the table, it has the row.
        await Infrastructure.Wait.UntilAsync(
            async () => await PostgresFixture.ScalarAsync<bool>(standby, "select to_regclass('public.version_probe') is not null", Ct),
            TimeSpan.FromSeconds(30),
            () => $"the primary's write (marker {marker}) should become visible on the standby ({image})",
            Ct);
        Assert.Equal(marker, await PostgresFixture.ScalarAsync<string>(standby, "select marker from version_probe", Ct));
        Assert.Equal(1L, await PostgresFixture.ScalarAsync<long>(
            primary, "select count(*) from pg_stat_replication where application_name = 'eu-west' and state = 'streaming'", Ct));
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
        IContainer container = new ContainerBuilder(TestPostgres.Image.Name)
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
