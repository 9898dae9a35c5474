using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// Runs PostgreSQL's own <c>pg_recvlogical</c> with pgoutput, writing to <c>/dev/null</c>, from a slot's position up to
/// an end LSN: the anchor for streaming throughput.
/// </summary>
internal sealed class PgRecvLogical
{
    /// <summary>Where Debian installs each major version's client binaries.</summary>
    private const string DebianRoot = "/usr/lib/postgresql";

    private readonly string _path;
    private readonly NpgsqlConnectionStringBuilder _target;

    /// <summary>The <c>application_name</c> its connections use (<c>PGAPPNAME</c>).</summary>
    public const string ApplicationName = "bench-pg-recvlogical";

    private PgRecvLogical(string path, string version, bool isFallback, string connectionString)
    {
        _path = path;
        Version = version;
        IsFallback = isFallback;
        _target = new NpgsqlConnectionStringBuilder(connectionString);
    }

    /// <summary>The executable.</summary>
    public string Path => _path;

    /// <summary>What <c>pg_recvlogical --version</c> printed, e.g. <c>pg_recvlogical (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)</c>.</summary>
    public string Version { get; }

    /// <summary>
    /// Whether it is not the server's own: the server binaries (e.g. those of <c>deploy/postgres-binaries.sh</c>) have no
    /// <c>pg_recvlogical</c>, so Debian's client of another major version streams from the server instead.
    /// </summary>
    public bool IsFallback { get; }

    /// <summary>
    /// The <c>pg_recvlogical</c> beside the server binaries in <paramref name="serverBinDirectory"/>, else the newest of
    /// Debian's (<c>/usr/lib/postgresql/&lt;major&gt;/bin</c>). It only relays the replication protocol and passes the
    /// pgoutput options through, so an older client streams from a newer server with the server's protocol version.
    /// </summary>
    /// <exception cref="InvalidOperationException">No <c>pg_recvlogical</c> was found, or it does not run.</exception>
    public static PgRecvLogical Find(string serverBinDirectory, string connectionString)
    {
        string own = System.IO.Path.Combine(serverBinDirectory, "pg_recvlogical");
        if (File.Exists(own))
        {
            return new PgRecvLogical(own, VersionOf(own), isFallback: false, connectionString);
        }

        string? fallback = Directory.Exists(DebianRoot)
            ? Directory.GetDirectories(DebianRoot)
                .Select(d => (dir: d, major: int.TryParse(System.IO.Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : -1))
                .Where(x => x.major > 0 && File.Exists(System.IO.Path.Combine(x.dir, "bin", "pg_recvlogical")))
                .OrderByDescending(x => x.major)
                .Select(x => System.IO.Path.Combine(x.dir, "bin", "pg_recvlogical"))
                .FirstOrDefault()
            : null;
        return fallback is null
            ? throw new InvalidOperationException(
                $"pg_recvlogical was not found in {serverBinDirectory} (the folder of the PostgreSQL server binaries) nor in {DebianRoot}/*/bin; " +
                "install Debian's postgresql-client for the anchor.")
            : new PgRecvLogical(fallback, VersionOf(fallback), isFallback: true, connectionString);
    }

    /// <summary>For the notes and the JSON: which client, and whether it is the server's own.</summary>
    public string Describe(string serverVersion) => IsFallback
        ? $"{Version} ({_path}) against a PostgreSQL {serverVersion} server: the server's binaries have no pg_recvlogical, so Debian's client of another major version is the anchor (it relays the server's pgoutput unchanged)"
        : $"{Version} ({_path}), the server's own";

    private static string VersionOf(string path)
    {
        var start = new ProcessStartInfo(path, "--version")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {path}.");
        string output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return process.ExitCode == 0 && output.Length > 0
            ? output
            : throw new InvalidOperationException($"'{path} --version' failed (exit {process.ExitCode.ToString(CultureInfo.InvariantCulture)}).");
    }

    /// <summary>
    /// Streams <paramref name="slot"/> until <paramref name="endPosition"/> (<c>--endpos</c>, <c>--no-loop</c>) and returns
    /// the time from starting the process to its exit.
    /// </summary>
    /// <exception cref="InvalidOperationException">It exited with an error.</exception>
    /// <exception cref="TimeoutException">It did not reach the end position within <paramref name="timeout"/> (it is killed).</exception>
    public async Task<TimeSpan> StreamToDevNullAsync(
        string slot, string publication, int protocolVersion, Lsn endPosition, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(_path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[]
        {
            "-h", _target.Host ?? "127.0.0.1",
            "-p", _target.Port.ToString(CultureInfo.InvariantCulture),
            "-U", _target.Username ?? "postgres",
            "-d", _target.Database ?? "postgres",
            "--slot", slot,
            "--start",
            "--endpos", endPosition.ToString(),
            "-o", $"proto_version={protocolVersion.ToString(CultureInfo.InvariantCulture)}",
            "-o", $"publication_names={publication}",
            "-f", "/dev/null",
            "--no-loop",
        })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PGAPPNAME"] = ApplicationName;
        if (!string.IsNullOrEmpty(_target.Password))
        {
            start.Environment["PGPASSWORD"] = _target.Password;
        }

        long t0 = Stopwatch.GetTimestamp();
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {_path}.");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException(
                $"pg_recvlogical did not reach --endpos {endPosition} on slot {slot} within {timeout.TotalSeconds:0} s and was killed. " +
                $"stderr: {(await stderr.ConfigureAwait(false)).Trim()}");
        }

        TimeSpan elapsed = Stopwatch.GetElapsedTime(t0);
        string errors = (await stderr.ConfigureAwait(false)).Trim();
        _ = await stdout.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_recvlogical on slot {slot} exited with code {process.ExitCode}: {errors}");
        }

        return elapsed;
    }
}
