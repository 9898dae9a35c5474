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
    private readonly string _path;
    private readonly NpgsqlConnectionStringBuilder _target;

    /// <summary>The <c>application_name</c> its connections use (<c>PGAPPNAME</c>).</summary>
    public const string ApplicationName = "bench-pg-recvlogical";

    public PgRecvLogical(string binDirectory, string connectionString)
    {
        _path = Path.Combine(binDirectory, "pg_recvlogical");
        if (!File.Exists(_path))
        {
            throw new InvalidOperationException($"pg_recvlogical was not found in {binDirectory} (the folder of the PostgreSQL binaries).");
        }

        _target = new NpgsqlConnectionStringBuilder(connectionString);
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
