using System.Globalization;
using Npgsql;
using OrleansLsn.Client;

namespace OrleansLsn.Bench.Tracker;

/// <summary>
/// The primary's WAL page and segment sizes, to recognise an insert position that sits just past a page header.
/// <para>
/// When the last record ends exactly on a WAL page boundary, <c>pg_current_wal_insert_lsn()</c> reports the boundary
/// plus the page header (24 bytes, 40 at a segment start), while the record's end, and so the standby's
/// <c>pg_last_wal_replay_lsn()</c>, is the boundary itself: no replica reaches that LSN until more WAL is written.
/// </para>
/// </summary>
internal sealed class WalLayout
{
    private WalLayout(ulong blockSize, ulong segmentSize)
    {
        BlockSize = blockSize;
        SegmentSize = segmentSize;
    }

    public ulong BlockSize { get; }

    public ulong SegmentSize { get; }

    public static async Task<WalLayout> ReadAsync(NpgsqlConnection primary, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "select current_setting('wal_block_size'), (select setting from pg_settings where name = 'wal_segment_size')", primary);
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new WalLayout(
            ulong.Parse(reader.GetString(0), CultureInfo.InvariantCulture),
            ulong.Parse(reader.GetString(1), CultureInfo.InvariantCulture));
    }

    /// <summary>Whether <paramref name="lsn"/> is the first byte after a page header: no record can end there.</summary>
    public bool IsJustPastPageHeader(Lsn lsn) => PrimaryLsn.SkipPageHeader(lsn, BlockSize, SegmentSize) != lsn;

    public string Describe(Lsn lsn) =>
        $"{lsn} (offset {lsn.Value % BlockSize} in its {BlockSize.ToString(CultureInfo.InvariantCulture)}-byte WAL page)";
}
