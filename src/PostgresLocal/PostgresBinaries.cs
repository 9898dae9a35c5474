namespace OrleansLsn.PostgresLocal;

/// <summary>Finds the machine's PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup, ...).</summary>
public static class PostgresBinaries
{
    /// <summary>Environment variable that names the folder holding <c>pg_ctl</c>, overriding the search.</summary>
    public const string BinDirEnvironmentVariable = "ORLEANSLSN_PG_BIN";

    /// <summary>
    /// Returns the folder with the server binaries: <c>$ORLEANSLSN_PG_BIN</c>, else <c>pg_config --bindir</c>, else the
    /// newest <c>/usr/lib/postgresql/*/bin</c>, else the folder of <c>pg_ctl</c> on <c>PATH</c>.
    /// </summary>
    /// <exception cref="LocalPostgresException">No folder holds <c>initdb</c>, <c>pg_ctl</c> and <c>pg_basebackup</c>.</exception>
    public static string FindBinDirectory()
    {
        var tried = new List<string>();
        foreach (string candidate in Candidates())
        {
            tried.Add(candidate);
            if (IsComplete(candidate))
            {
                return candidate;
            }
        }

        throw new LocalPostgresException(
            "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) were not found. Tried: " +
            (tried.Count == 0 ? "(nothing)" : string.Join(", ", tried)) +
            $". Install PostgreSQL (Debian: apt-get install -y postgresql) or set {BinDirEnvironmentVariable}.");
    }

    private static bool IsComplete(string dir) =>
        File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")) &&
        File.Exists(Path.Combine(dir, "pg_basebackup"));

    private static IEnumerable<string> Candidates()
    {
        string? fromEnv = Environment.GetEnvironmentVariable(BinDirEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            yield return fromEnv;
        }

        string? fromPgConfig = TryPgConfigBinDir();
        if (fromPgConfig is not null)
        {
            yield return fromPgConfig;
        }

        if (Directory.Exists("/usr/lib/postgresql"))
        {
            IEnumerable<string> versions = Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (dir: d, version: int.TryParse(Path.GetFileName(d), out int v) ? v : -1))
                .OrderByDescending(x => x.version)
                .Select(x => Path.Combine(x.dir, "bin"));
            foreach (string dir in versions)
            {
                yield return dir;
            }
        }

        string? path = Environment.GetEnvironmentVariable("PATH");
        if (path is not null)
        {
            foreach (string dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                if (File.Exists(Path.Combine(dir, "pg_ctl")))
                {
                    // pg_ctl on PATH may be a symlink into the real bin folder.
                    string pgCtl = Path.Combine(dir, "pg_ctl");
                    FileSystemInfo? target = new FileInfo(pgCtl).ResolveLinkTarget(returnFinalTarget: true);
                    yield return Path.GetDirectoryName(target?.FullName ?? pgCtl)!;
                }
            }
        }
    }

    private static string? TryPgConfigBinDir()
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("pg_config", "--bindir")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var process = System.Diagnostics.Process.Start(psi);
            if (process is null)
            {
                return null;
            }

            string output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit(5000);
            return process.ExitCode == 0 && output.Length > 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
