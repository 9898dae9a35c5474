using System.Diagnostics;
using System.Text;

namespace OrleansLsn.PostgresLocal;

/// <summary>Runs PostgreSQL's command-line tools, as the <c>postgres</c> OS user when this process is root.</summary>
internal static class ProcessRunner
{
    /// <summary>PostgreSQL refuses to run as root, so root delegates to this account.</summary>
    internal const string PostgresOsUser = "postgres";

    internal static bool RunningAsRoot => Environment.IsPrivilegedProcess && OperatingSystem.IsLinux();

    internal static ProcessStartInfo CreateStartInfo(string fileName, IEnumerable<string> arguments, bool asPostgresUser)
    {
        ProcessStartInfo psi;
        if (asPostgresUser && RunningAsRoot)
        {
            psi = new ProcessStartInfo("runuser");
            psi.ArgumentList.Add("-u");
            psi.ArgumentList.Add(PostgresOsUser);
            psi.ArgumentList.Add("--");
            psi.ArgumentList.Add(fileName);
        }
        else
        {
            psi = new ProcessStartInfo(fileName);
        }

        foreach (string argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.RedirectStandardInput = false;
        psi.UseShellExecute = false;
        // Tools must not pick up a caller's PG* settings (PGPORT, PGHOST, ...) and talk to the wrong server.
        foreach (string key in psi.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["LC_ALL"] = "C";
        return psi;
    }

    /// <summary>Runs a tool to completion and returns its standard output; throws with its output when it fails.</summary>
    /// <remarks>
    /// <paramref name="environment"/> is set after the caller's <c>PG*</c> variables are removed: the way to give a tool
    /// a password (<c>PGPASSWORD</c>) without putting it on its command line, which any user can read and which failure
    /// messages quote.
    /// </remarks>
    internal static async Task<string> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        bool asPostgresUser,
        TimeSpan timeout,
        CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        ProcessStartInfo psi = CreateStartInfo(fileName, arguments, asPostgresUser);
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        using var process = new Process { StartInfo = psi };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stdout)
                {
                    stdout.AppendLine(e.Data);
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            }
        };

        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new LocalPostgresException($"Could not start '{psi.FileName}': {ex.Message}", ex);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(timeoutCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }

            cancellationToken.ThrowIfCancellationRequested();
            throw new LocalPostgresException(
                $"'{Describe(psi)}' did not finish within {timeout.TotalSeconds:0.#} s.\n{stderr}{stdout}");
        }

        if (process.ExitCode != 0)
        {
            throw new LocalPostgresException(
                $"'{Describe(psi)}' failed with exit code {process.ExitCode}.\n{stderr}{stdout}".TrimEnd());
        }

        return stdout.ToString();
    }

    internal static string Describe(ProcessStartInfo psi) => psi.FileName + " " + string.Join(' ', psi.ArgumentList);
}
