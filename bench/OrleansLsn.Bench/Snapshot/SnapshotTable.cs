using System.Diagnostics;
using Npgsql;
using OrleansLsn.Bench.Replication;
using OrleansLsn.Replication;

namespace OrleansLsn.Bench.Snapshot;

/// <summary>
/// The tables every snapshot scenario copies, in one publication: <see cref="Table"/> with the run's rows and a small
/// <see cref="WarmupTable"/> of the same shape, read once unmeasured so that the measured runs use jitted code.
/// </summary>
internal static class SnapshotTable
{
    public const string Table = "bench_snapshot_rows";
    public const string WarmupTable = "bench_snapshot_warmup";
    public const string Publication = "bench_snapshot_pub";
    public const int WarmupRows = 50_000;

    /// <summary>Rows per snapshot batch in every scenario.</summary>
    public const int ChunkRows = 1000;

    /// <summary>The table as a snapshot request names it.</summary>
    public static string Qualified(string table) => "public." + table;

    /// <summary>
    /// Creates both tables and the publication (dropping leftovers first), fills them (~100 bytes of text per row:
    /// id, a 64-char text, an int, a timestamptz and a numeric), vacuums and analyses them, and returns the time the
    /// fill took and the main table's size.
    /// </summary>
    public static async Task<(TimeSpan Fill, long TableBytes)> CreateAsync(NpgsqlConnection admin, int rows, CancellationToken cancellationToken)
    {
        await DropAsync(admin, cancellationToken).ConfigureAwait(false);
        long start = Stopwatch.GetTimestamp();
        foreach ((string table, int count) in new[] { (Table, rows), (WarmupTable, WarmupRows) })
        {
            await ReplicationSql.ExecuteAsync(admin, $"create table {table} (id bigint primary key, a text, b int, c timestamptz, d numeric)", cancellationToken)
                .ConfigureAwait(false);
            await ReplicationSql.ExecuteAsync(
                admin,
                $"insert into {table} select g, md5(g::text) || md5((-g)::text), (g % 100000)::int, " +
                "timestamptz '2026-01-01 00:00:00+00' + g * interval '1 ms', (g % 1000000) / 100.0 " +
                "from generate_series(1, $1::bigint) g",
                cancellationToken,
                (long)count).ConfigureAwait(false);

            // Sets the hint bits and the visibility map now, so that no reader pays for them on its first pass.
            await ReplicationSql.ExecuteAsync(admin, $"vacuum (analyze) {table}", cancellationToken).ConfigureAwait(false);
        }

        await ReplicationSql.ExecuteAsync(admin, $"create publication {Publication} for table {Table}, {WarmupTable}", cancellationToken).ConfigureAwait(false);
        TimeSpan fill = Stopwatch.GetElapsedTime(start);
        long bytes = await ReplicationSql.ScalarAsync<long>(admin, $"select pg_table_size('{Table}')", cancellationToken).ConfigureAwait(false);
        return (fill, bytes);
    }

    public static Task DropAsync(NpgsqlConnection admin, CancellationToken cancellationToken) =>
        ReplicationSql.DropAsync(admin, [], [Publication], [Table, WarmupTable], cancellationToken);

    /// <summary>A pump on <paramref name="slot"/> (created by the caller) and the publication, not started.</summary>
    public static ReplicationPump NewPump(string primary, string slot, string applicationName) => new(new ReplicationPumpOptions
    {
        ConnectionString = primary,
        SlotName = slot,
        PublicationName = Publication,
        CreateSlot = false,
        CreatePublication = false,
        ApplicationName = applicationName,
    });
}
