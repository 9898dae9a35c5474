using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Fixture;

/// <summary>
/// The PostgresLocal library itself (folders, processes, reaper, sweep), whatever backend the run uses: these tests need
/// the machine's PostgreSQL binaries. The behaviour both backends share is in <see cref="TestClusterTests"/>.
/// </summary>
public sealed class LocalClusterTests
{
    // Standby names of the dedicated clusters below: one standby per region, as the system runs.
    private const string EuWest = "eu-west";
    private const string UsEast = "us-east";

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
        Assert.Same(cluster.Standbys[0], cluster.Standby);
        Assert.Same(cluster.Standbys[1], cluster.GetStandby(UsEast));
        Assert.Contains($"'{UsEast}'", Assert.Throws<ArgumentException>(() => cluster.GetStandby("nope")).Message);
        // The primary is no standby: a standby control must refuse it rather than act on it.
        await Assert.ThrowsAsync<ArgumentException>(() => cluster.ResumeReplayAsync(cluster.Primary, ct));

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

    [Theory]
    [InlineData(StandbyCopyMethod.PgBaseBackup)]
    [InlineData(StandbyCopyMethod.LowLevelBackup)]
    public async Task PasswordAuthentication_RefusesTcpWithoutThePassword_AndTheStandbyStreamsWithIt(StandbyCopyMethod copy)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        if (copy == StandbyCopyMethod.PgBaseBackup && !PostgresBinaries.HasTool(PostgresBinaries.FindBinDirectory(), "pg_basebackup"))
        {
            // These binaries have no pg_basebackup (deploy/postgres-binaries.sh): only the other copy method exists here.
            copy = StandbyCopyMethod.LowLevelBackup;
        }

        var options = new LocalPostgresOptions { Name = "password", StandbyNames = [EuWest], StandbyCopy = copy, PasswordAuthentication = true };
        LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(options, ct);
        string passwordFile = Path.Combine(cluster.Primary.Directory, "pwfile");
        try
        {
            string? password = new NpgsqlConnectionStringBuilder(cluster.Primary.ConnectionString).Password;
            Assert.Equal(32, password?.Length);
            Assert.Equal(password, new NpgsqlConnectionStringBuilder(cluster.Standby!.ConnectionString).Password);
            Assert.True(!OperatingSystem.IsWindows() && File.GetUnixFileMode(passwordFile) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), "the password file should be mode 600");

            var none = new NpgsqlConnectionStringBuilder(cluster.Primary.ConnectionString) { Password = null };
            var wrong = new NpgsqlConnectionStringBuilder(cluster.Standby.ConnectionString) { Password = "not-the-password" };
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => OpenAsync(none.ConnectionString, ct));
            var refused = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(wrong.ConnectionString, ct));
            Assert.Equal(PostgresErrorCodes.InvalidPassword, refused.SqlState);

            // The standby connected with the password (its primary_conninfo): it streams and catches up.
            await cluster.WaitForStandbyCatchUpAsync(TimeSpan.FromSeconds(30), ct);
            await using NpgsqlConnection primary = await OpenAsync(cluster.Primary.ConnectionString, ct);
            await using var streaming = new NpgsqlCommand("select count(*) from pg_stat_replication where application_name = $1 and state = 'streaming'", primary);
            streaming.Parameters.AddWithValue(EuWest);
            Assert.Equal(1L, await streaming.ExecuteScalarAsync(ct));
        }
        finally
        {
            await cluster.DisposeAsync();
        }

        Assert.False(File.Exists(passwordFile), "the password file should be removed with the cluster");
    }

    /// <summary>
    /// The low-level base backup (the only way on binaries without <c>pg_basebackup</c>), forced on binaries that have
    /// it too (Debian's 15 in the default run): the standby is in recovery, streams, and replays the primary's writes.
    /// </summary>
    [Fact]
    public async Task LowLevelBackupStandby_EvenWherePgBaseBackupExists_StreamsAndReplaysThePrimarysWrites()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var options = new LocalPostgresOptions { Name = "lowlevel", StandbyNames = [EuWest], StandbyCopy = StandbyCopyMethod.LowLevelBackup };
        await using LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(options, ct);
        await using NpgsqlConnection primary = await OpenAsync(cluster.Primary.ConnectionString, ct);
        await using NpgsqlConnection standby = await OpenAsync(cluster.Standby!.ConnectionString, ct);
        // No pg_basebackup ran: it would have left its backup_manifest in the standby's folder.
        Assert.False(File.Exists(Path.Combine(cluster.Standby.DataDirectory, "backup_manifest")), "the standby should come from the low-level backup");

        await using (var recovery = new NpgsqlCommand("select pg_is_in_recovery()", standby))
        {
            Assert.True((bool)(await recovery.ExecuteScalarAsync(ct))!, "the standby should be in recovery");
        }

        string marker = Guid.NewGuid().ToString("N");
        await using (var write = new NpgsqlCommand("create table lowlevel_probe as select $1::text as marker", primary))
        {
            write.Parameters.AddWithValue(marker);
            await write.ExecuteNonQueryAsync(ct);
        }

        // The table and its row came in one transaction: once the standby has the table, it has the row.
        await Infrastructure.Wait.UntilAsync(
            async () =>
            {
                await using var exists = new NpgsqlCommand("select to_regclass('public.lowlevel_probe') is not null", standby);
                return (bool)(await exists.ExecuteScalarAsync(ct))!;
            },
            TimeSpan.FromSeconds(30),
            () => $"the primary's write (marker {marker}) should be replayed on the low-level backup's standby",
            ct);
        await using (var read = new NpgsqlCommand("select marker from lowlevel_probe", standby))
        {
            Assert.Equal(marker, (string?)await read.ExecuteScalarAsync(ct));
        }

        await using var streaming = new NpgsqlCommand("select count(*) from pg_stat_replication where application_name = $1 and state = 'streaming'", primary);
        streaming.Parameters.AddWithValue(EuWest);
        Assert.Equal(1L, await streaming.ExecuteScalarAsync(ct));
    }

    private static async Task<NpgsqlConnection> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private static Task<LocalPostgresCluster> StartRegionalClusterAsync(string name, CancellationToken cancellationToken) =>
        LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = name, StandbyNames = [EuWest, UsEast] }, cancellationToken);

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
