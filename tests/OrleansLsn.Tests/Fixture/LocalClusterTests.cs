using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Fixture;

public sealed class LocalClusterTests(PostgresFixture fixture)
{
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
    public async Task DisposedCluster_LeavesNoProcessOrFolder()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        LocalPostgresCluster cluster = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "dispose", WithStandby = false }, ct);
        string dir = cluster.Directory;
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
        using var child = System.Diagnostics.Process.Start(psi)!;
        string? line = await child.StandardOutput.ReadLineAsync(ct);
        Assert.NotNull(line);
        Assert.StartsWith("READY ", line);
        string dir = line["READY ".Length..];
        int postmasterPid = int.Parse(File.ReadLines(Path.Combine(dir, "primary", "data", "postmaster.pid")).First());
        Assert.DoesNotContain(dir, before);
        Assert.True(ProcessExists(postmasterPid));

        child.Kill(entireProcessTree: false);
        await child.WaitForExitAsync(ct);

        await Wait.UntilAsync(() => !ProcessExists(postmasterPid) && !Directory.Exists(dir), TimeSpan.FromSeconds(30),
            () => $"after SIGKILL of the owner: postmaster {postmasterPid} alive={ProcessExists(postmasterPid)}, folder {dir} exists={Directory.Exists(dir)}");
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
