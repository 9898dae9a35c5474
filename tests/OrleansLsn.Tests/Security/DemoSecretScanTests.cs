using System.Diagnostics;
using System.Text.RegularExpressions;
using Npgsql;
using OrleansLsn.Silo.Local;
using Xunit;

namespace OrleansLsn.Tests.Security;

/// <summary>
/// The whole demo (<c>demo</c> command of the silo executable, as the README runs it, with its four silo processes)
/// prints and logs no secret: every line of its standard output and error and every log file of its silos is searched
/// for this run's PostgreSQL password, each connection string, the key material of its certificates and the password of
/// the client's PFX.
/// </summary>
public sealed partial class DemoSecretScanTests
{
    private static readonly TimeSpan DemoDeadline = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task WholeDemo_PrintsAndLogsNoPasswordConnectionStringOrKeyMaterial()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        var stdout = new List<string>();
        var stderr = new List<string>();

        // --keep-folder: the demo leaves its folder (silo logs, certificates, the files with the connection strings) and
        // prints its path, so the run's own secrets are known here without the demo ever printing one.
        int exitCode = await RunDemoAsync(["demo", "--writes", "3", "--keep-folder"], stdout, stderr, ct);
        string? folder = stdout.Select(l => KeptFolder().Match(l)).FirstOrDefault(m => m.Success)?.Groups[1].Value;
        Assert.True(folder is not null, "the demo did not print its kept folder:\n" + string.Join('\n', stdout.TakeLast(30).Concat(stderr.TakeLast(30))));
        try
        {
            Assert.True(exitCode == 0, $"the demo exited with {exitCode}:\n" + string.Join('\n', stdout.TakeLast(40).Concat(stderr.TakeLast(40))));

            string secrets = Path.Combine(folder, LocalDeployment.SecretsFolderName);
            string[] connectionFiles = Directory.GetFiles(secrets, "*.connection");
            // The primary as the superuser, as the silo role and as the client role, and one replica per region as the
            // tracker role and as the superuser (the application's).
            Assert.Equal(7, connectionFiles.Length);
            var scan = new SecretScan().AddKeyMaterial(folder);
            var passwords = new HashSet<string>(StringComparer.Ordinal);
            foreach (string file in connectionFiles)
            {
                string connectionString = File.ReadAllText(file);
                scan.Add($"the connection string in {Path.GetFileName(file)}", connectionString);
                string? password = new NpgsqlConnectionStringBuilder(connectionString).Password;
                Assert.False(string.IsNullOrEmpty(password), $"{Path.GetFileName(file)} has no password: the demo should run PostgreSQL with passwords");
                passwords.Add(password);
            }

            // The superuser's and the three roles' passwords (random, one each); added last, so they are the secrets the
            // scan first proves it finds.
            Assert.Equal(4, passwords.Count);
            int n = 0;
            foreach (string password in passwords)
            {
                scan.Add($"this run's PostgreSQL password #{++n}", password);
            }

            string[] logs = Directory.GetFiles(folder, "*.log", SearchOption.AllDirectories);
            Assert.True(logs.Length >= 4, $"expected the logs of the demo's 4 silos in {folder}, found {logs.Length}");
            var outputs = new List<(string Source, IReadOnlyList<string> Lines)>
            {
                ("the demo's standard output", stdout),
                ("the demo's standard error", stderr),
            };
            foreach (string log in logs)
            {
                string[] lines = File.ReadAllLines(log);
                Assert.True(lines.Length > 0, $"{Path.GetFileName(log)} is empty");
                outputs.Add((Path.GetFileName(log), lines));
            }

            Assert.True(File.Exists(Path.Combine(secrets, "client-pfx.password")), "the client's PFX password file is missing");

            // 2 PEM markers, 5 connection strings, 4 passwords, the PFX's password and base64, and the base64 lines of
            // both private keys (about 25 each); SecretScan.AddKeyMaterial found the PFX and its *.password file.
            scan.AssertNoneIn(outputs, minimumSecrets: 40);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Runs the silo executable as the README does, reading both streams line by line, until it exits or the deadline.</summary>
    private static async Task<int> RunDemoAsync(string[] arguments, List<string> stdout, List<string> stderr, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(typeof(SiloProcess).Assembly.Location);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(DemoDeadline);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // Its silos stop by themselves once it is gone, and its PostgreSQL reaper removes the servers.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            Assert.Fail($"the demo did not finish within {DemoDeadline.TotalMinutes:0} min:\n" + string.Join('\n', stdout.TakeLast(30)));
        }

        // The end of both streams has been read once WaitForExit returns after the process exited.
        process.WaitForExit();
        return process.ExitCode;
    }

    private static void Append(List<string> lines, string? line)
    {
        if (line is not null)
        {
            lock (lines)
            {
                lines.Add(line);
            }
        }
    }

    [GeneratedRegex(@"the deployment's folder is kept \(--keep-folder\): (\S+)$")]
    private static partial Regex KeptFolder();
}
