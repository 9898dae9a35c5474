using System.Diagnostics;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Npgsql;
using OrleansLsn.Bench.Replication;

namespace OrleansLsn.Bench.Common;

/// <summary>What the figures were measured on.</summary>
internal static class MachineInfo
{
    /// <param name="primary">Connection string of the primary.</param>
    /// <param name="standby">Connection string of the hot standby, or <see langword="null"/> when the command uses none.</param>
    /// <param name="cancellationToken">Cancels the queries and the timer measurement.</param>
    public static async Task<JsonObject> CollectAsync(string primary, string? standby, CancellationToken cancellationToken)
    {
        JsonObject machine = await CollectAsync(cancellationToken).ConfigureAwait(false);
        machine["postgresql_primary"] = await ServerVersionAsync(primary, cancellationToken).ConfigureAwait(false);
        if (standby is not null)
        {
            machine["postgresql_standby"] = await ServerVersionAsync(standby, cancellationToken).ConfigureAwait(false);
        }

        return machine;
    }

    /// <summary>
    /// Records which <c>pg_recvlogical</c> is the anchor (<c>machine.pg_recvlogical</c>) and, when it is not the server's
    /// own, says so in the notes.
    /// </summary>
    public static void AddRecvLogical(BenchReport report, PgRecvLogical recvLogical)
    {
        string server = report.ServerVersion ?? "(unknown)";
        report.Machine["pg_recvlogical"] = new JsonObject
        {
            ["path"] = recvLogical.Path,
            ["version"] = recvLogical.Version,
            ["fallback_to_other_version"] = recvLogical.IsFallback,
            ["server_version"] = server,
        };
        report.Note("Anchor client: " + recvLogical.Describe(server) + ".");
    }

    /// <summary>The machine alone, for commands that use no PostgreSQL server.</summary>
    /// <param name="cancellationToken">Cancels the timer measurement.</param>
    public static async Task<JsonObject> CollectAsync(CancellationToken cancellationToken)
    {
        return new JsonObject
        {
            ["processor_count"] = Environment.ProcessorCount,
            ["cpu_model"] = ReadCpuModel(),
            ["os"] = RuntimeInformation.OSDescription,
            ["architecture"] = RuntimeInformation.OSArchitecture.ToString(),
            ["dotnet"] = RuntimeInformation.FrameworkDescription,
            ["memory_bytes"] = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
            ["server_gc"] = GCSettings.IsServerGC,
            ["gc_latency_mode"] = GCSettings.LatencyMode.ToString(),
            ["timer_period_ms"] = Math.Round(await MeasureTimerPeriodAsync(cancellationToken).ConfigureAwait(false), 3),
        };
    }

    /// <summary>
    /// The mean duration of <c>Task.Delay(1 ms)</c>: .NET timers fire on the runtime's tick, which on Linux is the coarse
    /// monotonic clock (the kernel tick), so every timer-driven interval, the tracker's poll interval included, is
    /// rounded up to it.
    /// </summary>
    public static async Task<double> MeasureTimerPeriodAsync(CancellationToken cancellationToken)
    {
        const int Rounds = 50;
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < Rounds; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(1), cancellationToken).ConfigureAwait(false);
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds / Rounds;
    }

    private static string ReadCpuModel()
    {
        const string CpuInfo = "/proc/cpuinfo";
        if (!File.Exists(CpuInfo))
        {
            return "unknown (no /proc/cpuinfo)";
        }

        foreach (string line in File.ReadLines(CpuInfo))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is int colon and >= 0)
            {
                return line[(colon + 1)..].Trim();
            }
        }

        return "unknown (no model name in /proc/cpuinfo)";
    }

    private static async Task<string> ServerVersionAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("show server_version", connection);
        return (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }
}
