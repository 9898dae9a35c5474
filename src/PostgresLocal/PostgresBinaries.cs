using System.Globalization;

namespace OrleansLsn.PostgresLocal;

/// <summary>
/// Finds PostgreSQL server binaries (<c>initdb</c>, <c>pg_ctl</c>, <c>postgres</c>): the machine's (Debian's
/// <c>/usr/lib/postgresql/&lt;major&gt;/bin</c>) or those <c>deploy/postgres-binaries.sh</c> unpacked into its cache.
/// </summary>
public static class PostgresBinaries
{
    /// <summary>Environment variable that names the folder holding <c>pg_ctl</c>, overriding the search.</summary>
    public const string BinDirEnvironmentVariable = "ORLEANSLSN_PG_BIN";

    /// <summary>
    /// Environment variable that picks a major version (<c>15</c>, <c>16</c>, <c>17</c>, <c>18</c>):
    /// <c>/usr/lib/postgresql/&lt;major&gt;/bin</c>, else the newest <c>&lt;major&gt;.*/bin</c> in <see cref="CacheDirectories"/>.
    /// Ignored when <see cref="BinDirEnvironmentVariable"/> is set.
    /// </summary>
    public const string VersionEnvironmentVariable = "ORLEANSLSN_PG_VERSION";

    /// <summary>Environment variable that overrides the cache folder of <c>deploy/postgres-binaries.sh</c>.</summary>
    public const string CacheEnvironmentVariable = "ORLEANSLSN_PG_CACHE";

    /// <summary>
    /// The folders <c>deploy/postgres-binaries.sh</c> unpacks versions into (one sub-folder per full version):
    /// <c>$ORLEANSLSN_PG_CACHE</c> when set, else <c>/var/cache/orleanslsn/postgres</c> (where it puts them as root) and
    /// <c>~/.cache/orleanslsn/postgres</c>.
    /// </summary>
    public static IReadOnlyList<string> CacheDirectories
    {
        get
        {
            string? fromEnv = Environment.GetEnvironmentVariable(CacheEnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(fromEnv))
            {
                return [fromEnv];
            }

            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string home = string.IsNullOrWhiteSpace(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
                : xdg;
            return ["/var/cache/orleanslsn/postgres", Path.Combine(home, "orleanslsn", "postgres")];
        }
    }

    /// <summary>
    /// Returns the folder with the server binaries: <c>$ORLEANSLSN_PG_BIN</c>; else, when <c>$ORLEANSLSN_PG_VERSION</c>
    /// is set, that major version's folder (Debian's, then the cache's); else <c>pg_config --bindir</c>, else the newest
    /// <c>/usr/lib/postgresql/*/bin</c>, else the folder of <c>pg_ctl</c> on <c>PATH</c>.
    /// </summary>
    /// <exception cref="LocalPostgresException">No folder holds <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>.</exception>
    public static string FindBinDirectory()
    {
        string? version = Environment.GetEnvironmentVariable(VersionEnvironmentVariable);
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(BinDirEnvironmentVariable)) && !string.IsNullOrWhiteSpace(version))
        {
            return FindBinDirectory(version.Trim());
        }

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
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. Tried: " +
            (tried.Count == 0 ? "(nothing)" : string.Join(", ", tried)) +
            $". Install PostgreSQL (Debian: apt-get install -y postgresql) or set {BinDirEnvironmentVariable}.");
    }

    /// <summary>
    /// Returns the folder with the server binaries of major version <paramref name="major"/>:
    /// <c>/usr/lib/postgresql/&lt;major&gt;/bin</c>, else the newest <c>&lt;major&gt;.*/bin</c> in <see cref="CacheDirectories"/>.
    /// </summary>
    /// <exception cref="LocalPostgresException">Not a major version, or none of these folders has it; the message says how to fetch it.</exception>
    public static string FindBinDirectory(string major)
    {
        ArgumentNullException.ThrowIfNull(major);
        if (!int.TryParse(major, NumberStyles.None, CultureInfo.InvariantCulture, out int number) || number < 10)
        {
            throw new LocalPostgresException($"{VersionEnvironmentVariable} must be a PostgreSQL major version such as 15 or 17, not '{major}'.");
        }

        var tried = new List<string>();
        foreach (string candidate in VersionCandidates(number))
        {
            tried.Add(candidate);
            if (IsComplete(candidate))
            {
                return candidate;
            }
        }

        throw new LocalPostgresException(
            $"PostgreSQL {number} server binaries were not found. Tried: {string.Join(", ", tried)}. " +
            $"Fetch them with deploy/postgres-binaries.sh {number} (or set {BinDirEnvironmentVariable}).");
    }

    /// <summary>
    /// The major version of the binaries in <paramref name="binDirectory"/> (from <c>postgres --version</c>, e.g. 17).
    /// </summary>
    /// <exception cref="LocalPostgresException"><c>postgres --version</c> failed or printed no version.</exception>
    public static int GetMajorVersion(string binDirectory)
    {
        ArgumentNullException.ThrowIfNull(binDirectory);
        string output = RunForOutput(Path.Combine(binDirectory, "postgres"), "--version")
            ?? throw new LocalPostgresException($"'{Path.Combine(binDirectory, "postgres")} --version' did not run.");
        // "postgres (PostgreSQL) 17.10" or "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
        int at = output.IndexOf(") ", StringComparison.Ordinal);
        string rest = at < 0 ? "" : output[(at + 2)..];
        int end = 0;
        while (end < rest.Length && char.IsAsciiDigit(rest[end]))
        {
            end++;
        }

        return end > 0 && int.TryParse(rest.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out int major)
            ? major
            : throw new LocalPostgresException($"'postgres --version' printed no version: {output.Trim()}");
    }

    /// <summary>Whether <paramref name="binDirectory"/> has the tool <paramref name="name"/> (e.g. <c>pg_basebackup</c>, <c>pg_recvlogical</c>).</summary>
    public static bool HasTool(string binDirectory, string name) => File.Exists(Path.Combine(binDirectory, name));

    private static IEnumerable<string> VersionCandidates(int major)
    {
        yield return $"/usr/lib/postgresql/{major}/bin";
        foreach (string cache in CacheDirectories)
        {
            if (!Directory.Exists(cache))
            {
                continue;
            }

            // Sub-folders are full package versions such as 17.10.0-beta.17; the newest minor wins.
            IEnumerable<string> matching = Directory.GetDirectories(cache)
                .Select(d => (dir: d, version: ParseFolderVersion(Path.GetFileName(d))))
                .Where(x => x.version is { } v && v.Major == major)
                .OrderByDescending(x => x.version)
                .Select(x => Path.Combine(x.dir, "bin"));
            foreach (string dir in matching)
            {
                yield return dir;
            }
        }
    }

    private static Version? ParseFolderVersion(string name)
    {
        int dash = name.IndexOf('-', StringComparison.Ordinal);
        return Version.TryParse(dash < 0 ? name : name[..dash], out Version? v) ? v : null;
    }

    private static bool IsComplete(string dir) =>
        File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")) &&
        File.Exists(Path.Combine(dir, "postgres"));

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
        string? output = RunForOutput("pg_config", "--bindir")?.Trim();
        return string.IsNullOrEmpty(output) ? null : output;
    }

    /// <summary>Runs a tool and returns its standard output, or <see langword="null"/> if it is missing or fails.</summary>
    private static string? RunForOutput(string fileName, string argument)
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo(fileName, argument)
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

            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit(5000);
            return process.HasExited && process.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
