using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace OrleansLsn.Bench.Snapshot;

/// <summary>The second anchor: <c>pg_dump --data-only -t table</c> to <c>/dev/null</c>, beside the server binaries.</summary>
internal sealed class PgDump
{
    /// <summary>The <c>application_name</c> its connection uses (<c>PGAPPNAME</c>).</summary>
    public const string ApplicationName = "bench-pg-dump";

    private readonly NpgsqlConnectionStringBuilder _target;

    private PgDump(string path, string connectionString)
    {
        Path = path;
        _target = new NpgsqlConnectionStringBuilder(connectionString);
    }

    public string Path { get; }

    /// <summary>The <c>pg_dump</c> in <paramref name="binDirectory"/>, or <see langword="null"/> and why when there is none.</summary>
    public static (PgDump? Found, string? Missing) Find(string binDirectory, string connectionString)
    {
        string path = System.IO.Path.Combine(binDirectory, "pg_dump");
        return File.Exists(path)
            ? (new PgDump(path, connectionString), null)
            : (null, $"no pg_dump in {binDirectory} (the folder of the server binaries)");
    }

    /// <summary>Dumps the table's data to /dev/null and returns the time from starting the process to its exit.</summary>
    /// <exception cref="InvalidOperationException">It exited with an error.</exception>
    /// <exception cref="TimeoutException">It did not finish within <paramref name="timeout"/> (it is killed).</exception>
    public async Task<TimeSpan> DumpToDevNullAsync(string table, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(Path)
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
            "--data-only",
            "-t", table,
            "-f", "/dev/null",
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
        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {Path}.");
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
            throw new TimeoutException($"pg_dump of {table} did not finish within {timeout.TotalSeconds:0} s and was killed.");
        }

        TimeSpan elapsed = Stopwatch.GetElapsedTime(t0);
        string errors = (await stderr.ConfigureAwait(false)).Trim();
        _ = await stdout.ConfigureAwait(false);
        return process.ExitCode == 0
            ? elapsed
            : throw new InvalidOperationException($"pg_dump of {table} exited with code {process.ExitCode}: {errors}");
    }
}
