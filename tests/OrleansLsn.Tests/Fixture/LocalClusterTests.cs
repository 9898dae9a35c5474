using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Fixture;

public sealed class LocalClusterTests(PostgresFixture fixture)
{
    // Standby names of the dedicated clusters below: one standby per region, as the system runs.
    private const string EuWest = "eu-west";
    private const string UsEast = "us-east";
    private static readonly TimeSpan CatchUpTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Standby_ReplaysWritesFromPrimary()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string table = $"t_{nameof(Standby_ReplaysWritesFromPrimary).ToLowerInvariant()}";
        await using (var conn = new NpgsqlConnection(fixture.PrimaryConnectionString))
        {
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand($"drop table if exists {table}; create table {table}(v int); insert into {table} values (42)", conn);
            await cmd.ExecuteNonQueryAsync(ct);
        }

        await fixture.WaitForStandbyCatchUpAsync(ct);
        int v = await fixture.ScalarOnStandbyAsync<int>($"select v from {table}", ct);
        Assert.Equal(42, v);
        Assert.True(await fixture.ScalarOnStandbyAsync<bool>("select pg_is_in_recovery()", ct));
    }

    [Fact]
    public async Task BothFixtureStandbys_ReplayWritesFromPrimary()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string table = "t_both_fixture_standbys_replay";
        await ExecAsync(fixture.PrimaryConnectionString, $"drop table if exists {table}; create table {table}(v int); insert into {table} values (42)", ct);

        foreach (string standby in new[] { fixture.StandbyConnectionString, fixture.Standby2ConnectionString })
        {
            await fixture.WaitForStandbyCatchUpAsync(standby, ct);
            Assert.Equal(42, await PostgresFixture.ScalarAsync<int>(standby, $"select v from {table}", ct));
            Assert.True(await PostgresFixture.ScalarAsync<bool>(standby, "select pg_is_in_recovery()", ct));
        }
    }

    [Fact]
    public async Task FixturePrimary_PgStatReplicationListsBothStandbysByName()
    {
        LocalPostgresCluster cluster = fixture.RequireLocalCluster();
        Assert.Equal([PostgresFixture.StandbyName, PostgresFixture.Standby2Name], cluster.Standbys.Select(s => s.Name));
        Assert.Same(cluster.Standbys[0], cluster.Standby);

        // Logical replication tests stream from the same primary, so other walsenders may be listed too.
        await Wait.UntilAsync(
            () => StreamingApplicationNames(fixture.PrimaryConnectionString) is var names &&
                  names.Contains(PostgresFixture.StandbyName) && names.Contains(PostgresFixture.Standby2Name),
            CatchUpTimeout,
            () => $"pg_stat_replication to list '{PostgresFixture.StandbyName}' and '{PostgresFixture.Standby2Name}' streaming; it lists [{string.Join(", ", StreamingApplicationNames(fixture.PrimaryConnectionString))}]",
            TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task GetStandby_UnknownNameOrForeignServer_ThrowsArgumentExceptionNamingTheStandbys()
    {
        LocalPostgresCluster cluster = fixture.RequireLocalCluster();
        Assert.Same(cluster.Standbys[1], cluster.GetStandby(PostgresFixture.Standby2Name));

        var unknown = Assert.Throws<ArgumentException>(() => cluster.GetStandby("nope"));
        Assert.Contains("'nope'", unknown.Message);
        Assert.Contains($"'{PostgresFixture.Standby2Name}'", unknown.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => cluster.ResumeReplayAsync("nope", TestContext.Current.CancellationToken));
        // The primary is no standby: a standby control must refuse it rather than act on it.
        await Assert.ThrowsAsync<ArgumentException>(() => cluster.ResumeReplayAsync(cluster.Primary, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task PausedReplayOnOneStandby_OtherStandbyKeepsReplaying()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using LocalPostgresCluster cluster = await StartRegionalClusterAsync("two-pause", ct);
        string primary = cluster.Primary.ConnectionString;
        string euWest = cluster.GetStandby(EuWest).ConnectionString;
        string usEast = cluster.GetStandby(UsEast).ConnectionString;
        await ExecAsync(primary, "create table t(v int)", ct);
        await cluster.WaitForStandbyCatchUpAsync(EuWest, CatchUpTimeout, ct);
        await cluster.WaitForStandbyCatchUpAsync(UsEast, CatchUpTimeout, ct);

        await cluster.PauseReplayAsync(EuWest, ct);
        await ExecAsync(primary, "insert into t values (1)", ct);

        await cluster.WaitForStandbyCatchUpAsync(UsEast, CatchUpTimeout, ct);
        Assert.Equal(1L, await PostgresFixture.ScalarAsync<long>(usEast, "select count(*) from t", ct));
        Assert.Equal("not paused", await PostgresFixture.ScalarAsync<string>(usEast, "select pg_get_wal_replay_pause_state()", ct));
        // eu-west was paused before the insert, so it cannot have replayed it however long us-east took.
        Assert.Equal("paused", await PostgresFixture.ScalarAsync<string>(euWest, "select pg_get_wal_replay_pause_state()", ct));
        Assert.Equal(0L, await PostgresFixture.ScalarAsync<long>(euWest, "select count(*) from t", ct));

        await cluster.ResumeReplayAsync(EuWest, ct);
        await cluster.WaitForStandbyCatchUpAsync(EuWest, CatchUpTimeout, ct);
        Assert.Equal(1L, await PostgresFixture.ScalarAsync<long>(euWest, "select count(*) from t", ct));
    }

    [Fact]
    public async Task StoppedStandby_OtherKeepsStreaming_RestartedOneCatchesUp()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using LocalPostgresCluster cluster = await StartRegionalClusterAsync("two-stop", ct);
        string primary = cluster.Primary.ConnectionString;
        LocalPostgresServer euWest = cluster.GetStandby(EuWest);
        LocalPostgresServer usEast = cluster.GetStandby(UsEast);
        await ExecAsync(primary, "create table t(v int)", ct);
        await WaitForStreamingAsync(primary, [EuWest, UsEast]);
        int usEastPid = PostmasterPid(usEast);

        await cluster.StopStandbyAsync(usEast, immediate: true, ct);
        // Its pooled connections died with it; do not hand them out after the restart.
        NpgsqlConnection.ClearPool(new NpgsqlConnection(usEast.ConnectionString));
        Assert.False(usEast.IsRunning);
        Assert.False(ProcessExists(usEastPid), $"us-east's postmaster {usEastPid} should be gone after the stop");
        Assert.True(euWest.IsRunning);
        await WaitForStreamingAsync(primary, [EuWest]);

        await ExecAsync(primary, "insert into t values (7)", ct);
        await cluster.WaitForStandbyCatchUpAsync(euWest, CatchUpTimeout, ct);
        Assert.Equal(7, await PostgresFixture.ScalarAsync<int>(euWest.ConnectionString, "select v from t", ct));

        await cluster.StartStandbyAsync(UsEast, ct);
        Assert.True(usEast.IsRunning);
        await cluster.WaitForStandbyCatchUpAsync(usEast, CatchUpTimeout, ct);
        Assert.Equal(7, await PostgresFixture.ScalarAsync<int>(usEast.ConnectionString, "select v from t", ct));
        await WaitForStreamingAsync(primary, [EuWest, UsEast]);
    }

    [Fact]
    public async Task DisposedClusterWithTwoStandbys_StopsEveryServerAndDeletesFolder()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        LocalPostgresCluster cluster = await StartRegionalClusterAsync("two-dispose", ct);
        string dir = cluster.Directory;
        Assert.Equal([EuWest, UsEast], cluster.Standbys.Select(s => s.Name));
        Assert.All(cluster.Standbys, s => Assert.Equal(Path.Combine(dir, s.Name), s.Directory));
        int[] pids = cluster.Standbys.Append(cluster.Primary).Select(PostmasterPid).ToArray();
        Assert.All(pids, pid => Assert.True(ProcessExists(pid), $"postmaster {pid} should run before dispose"));

        await cluster.DisposeAsync();

        Assert.False(Directory.Exists(dir), $"cluster folder {dir} should be deleted");
        Assert.All(pids, pid => Assert.False(ProcessExists(pid), $"postmaster {pid} should be gone after dispose"));
    }

    [Theory]
    [InlineData("EU")]
    [InlineData("")]
    [InlineData("eu west")]
    [InlineData("eu-wést")]
    [InlineData("a23456789012345678901234567890123")]
    [InlineData("primary")]
    [InlineData("owner")]
    [InlineData("eu-west,us-east,eu-west")]
    public async Task Start_InvalidStandbyNames_ThrowsArgumentExceptionBeforeStartingAnything(string names)
    {
        string root = Path.Combine(Path.GetTempPath(), $"orleanslsn-pg-invalid-{Guid.NewGuid():N}");
        var options = new LocalPostgresOptions { Name = "invalid", RootDirectory = root, StandbyNames = names.Split(',') };

        var ex = await Assert.ThrowsAsync<ArgumentException>(() => LocalPostgresCluster.StartAsync(options, TestContext.Current.CancellationToken));

        Assert.Contains(nameof(LocalPostgresOptions.StandbyNames), ex.Message);
        Assert.False(Directory.Exists(root), $"nothing should be created for invalid names, but {root} exists");
    }

    [Fact]
    public async Task DisposedCluster_LeavesNoProcessOrFolder()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "dispose", WithStandby = false }, ct);
        string dir = cluster.Directory;
        Assert.Empty(cluster.Standbys);
        Assert.Null(cluster.Standby);
        int postmasterPid = int.Parse(File.ReadLines(Path.Combine(cluster.Primary.DataDirectory, "postmaster.pid")).First());
        Assert.True(ProcessExists(postmasterPid), $"postmaster {postmasterPid} should run before dispose");

        await cluster.DisposeAsync();

        Assert.False(Directory.Exists(dir), $"cluster folder {dir} should be deleted");
        Assert.False(ProcessExists(postmasterPid), $"postmaster {postmasterPid} should be gone after dispose");
    }

    [Fact]
    public async Task KilledOwner_ReaperStopsServersAndDeletesFolder()
    {
        // A child process owns a cluster and is killed with SIGKILL; its reaper must clean up on its own.
        CancellationToken ct = TestContext.Current.CancellationToken;
        string root = Path.Combine(Path.GetTempPath(), "orleanslsn-pg");
        var before = Directory.Exists(root) ? Directory.GetDirectories(root).ToHashSet() : [];
        string silo = Path.Combine(AppContext.BaseDirectory, "OrleansLsn.Silo.dll");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(silo);
        psi.ArgumentList.Add("local-postgres");
        foreach (string standby in new[] { EuWest, UsEast })
        {
            psi.ArgumentList.Add("--standby");
            psi.ArgumentList.Add(standby);
        }

        using var child = System.Diagnostics.Process.Start(psi)!;
        string? line = await child.StandardOutput.ReadLineAsync(ct);
        Assert.NotNull(line);
        Assert.StartsWith("READY ", line);
        string dir = line["READY ".Length..];
        Assert.DoesNotContain(dir, before);
        string[] servers = Directory.GetDirectories(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        Assert.Equal(["eu-west", "primary", "us-east"], servers);
        int[] pids = servers.Select(s => int.Parse(File.ReadLines(Path.Combine(dir, s, "data", "postmaster.pid")).First())).ToArray();
        Assert.All(pids, pid => Assert.True(ProcessExists(pid)));

        child.Kill(entireProcessTree: false);
        await child.WaitForExitAsync(ct);

        await Wait.UntilAsync(() => !pids.Any(ProcessExists) && !Directory.Exists(dir), TimeSpan.FromSeconds(30),
            () => $"after SIGKILL of the owner: postmasters alive [{string.Join(", ", pids.Where(ProcessExists))}] of [{string.Join(", ", pids)}], folder {dir} exists={Directory.Exists(dir)}");
    }

    [Fact]
    public async Task Start_SweepsFolderLeftByDeadProcess()
    {
        // What a crashed run leaves when even its reaper died: a folder whose owner marker names a dead process.
        CancellationToken ct = TestContext.Current.CancellationToken;
        string root = Path.Combine(Path.GetTempPath(), "orleanslsn-pg");
        Directory.CreateDirectory(root);
        string abandoned = Path.Combine(root, $"crashed-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path.Combine(abandoned, "primary", "data"));
        // PID 0 is never a user process, so this owner is certainly gone.
        File.WriteAllText(Path.Combine(abandoned, "owner"), "0 12345");

        LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "sweep", WithStandby = false }, ct);
        await cluster.DisposeAsync();

        Assert.False(Directory.Exists(abandoned), $"abandoned folder {abandoned} should have been swept");
    }

    [Fact]
    public async Task Start_SweepStopsEveryServerOfAbandonedCluster()
    {
        // A cluster whose owner and reaper both died while its servers ran: the next start must stop all of them,
        // whatever the standbys are called. A private root keeps other tests' starts from sweeping it first.
        CancellationToken ct = TestContext.Current.CancellationToken;
        string root = Path.Combine(Path.GetTempPath(), $"orleanslsn-pg-sweep-{Guid.NewGuid():N}");
        try
        {
            await using LocalPostgresCluster abandoned = await LocalPostgresCluster.StartAsync(
                new LocalPostgresOptions { Name = "abandoned", RootDirectory = root, StandbyNames = [EuWest, UsEast] }, ct);
            int[] pids = abandoned.Standbys.Append(abandoned.Primary).Select(PostmasterPid).ToArray();
            // PID 0 is never a user process, so this owner is certainly gone.
            File.WriteAllText(Path.Combine(abandoned.Directory, "owner"), "0 12345");

            LocalPostgresCluster sweeper = await LocalPostgresCluster.StartAsync(
                new LocalPostgresOptions { Name = "sweeper", RootDirectory = root, WithStandby = false }, ct);
            await sweeper.DisposeAsync();

            Assert.All(pids, pid => Assert.False(ProcessExists(pid), $"postmaster {pid} of the abandoned cluster should have been stopped"));
            Assert.False(Directory.Exists(abandoned.Directory), $"abandoned folder {abandoned.Directory} should have been swept");
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    private static Task<LocalPostgresCluster> StartRegionalClusterAsync(string name, CancellationToken cancellationToken) =>
        LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = name, StandbyNames = [EuWest, UsEast] }, cancellationToken);

    private static async Task ExecAsync(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static Task WaitForStreamingAsync(string primaryConnectionString, string[] expected) =>
        Wait.UntilAsync(
            () => StreamingApplicationNames(primaryConnectionString).SequenceEqual(expected),
            CatchUpTimeout,
            () => $"pg_stat_replication to list exactly [{string.Join(", ", expected)}] streaming; it lists [{string.Join(", ", StreamingApplicationNames(primaryConnectionString))}]",
            TestContext.Current.CancellationToken);

    /// <summary>The primary's walsenders in state <c>streaming</c>, by application name, sorted (synchronous: for <c>Wait.UntilAsync</c>).</summary>
    private static string[] StreamingApplicationNames(string primaryConnectionString)
    {
        using var conn = new NpgsqlConnection(primaryConnectionString);
        conn.Open();
        using var cmd = new NpgsqlCommand("select application_name from pg_stat_replication where state = 'streaming' order by application_name collate \"C\"", conn);
        using NpgsqlDataReader reader = cmd.ExecuteReader();
        var names = new List<string>();
        while (reader.Read())
        {
            names.Add(reader.GetString(0));
        }

        return names.ToArray();
    }

    private static int PostmasterPid(LocalPostgresServer server) =>
        int.Parse(File.ReadLines(Path.Combine(server.DataDirectory, "postmaster.pid")).First());

    internal static bool ProcessExists(int pid)
    {
        // A zombie (state Z) has exited; only its parent has not reaped it yet.
        string stat = $"/proc/{pid}/stat";
        if (!File.Exists(stat))
        {
            return false;
        }

        try
        {
            string text = File.ReadAllText(stat);
            return text[(text.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
