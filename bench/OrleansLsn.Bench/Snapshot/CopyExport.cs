using System.Diagnostics;
using Npgsql;

namespace OrleansLsn.Bench.Snapshot;

/// <summary>The anchor: <c>COPY (SELECT * FROM t) TO STDOUT</c> in text format, every line read with Npgsql's <c>BeginTextExport</c>.</summary>
internal static class CopyExport
{
    /// <summary>Reads the whole table and returns the time from opening the connection to the last line, and the lines read.</summary>
    public static async Task<(TimeSpan Elapsed, long Rows, long Chars)> ReadAllAsync(string primary, string table, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        await using var connection = new NpgsqlConnection(primary);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        long rows = 0;
        long chars = 0;
        using (TextReader reader = await connection.BeginTextExportAsync($"COPY (SELECT * FROM {table}) TO STDOUT", cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                rows++;
                chars += line.Length;
            }
        }

        return (Stopwatch.GetElapsedTime(start), rows, chars);
    }
}
