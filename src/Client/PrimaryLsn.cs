using Npgsql;
using NpgsqlTypes;

namespace OrleansLsn.Client;

/// <summary>The writer's side of read-your-writes: which LSN to wait for after a commit on the primary.</summary>
public static class PrimaryLsn
{
    /// <summary>Size of a WAL page header (XLogPageHeaderData, MAXALIGNed on 64-bit builds).</summary>
    internal const ulong ShortPageHeaderSize = 24;

    /// <summary>Size of the long page header that starts every WAL segment (XLogLongPageHeaderData).</summary>
    internal const ulong LongPageHeaderSize = 40;

    /// <summary>
    /// Returns the LSN a reader must wait for after your commit: <c>pg_current_wal_insert_lsn()</c>, moved back to the
    /// page boundary when it points just past a WAL page header. Call it on the primary after your transaction has
    /// committed (outside it): the value is at or past your commit record, so once a replica has replayed it, your write
    /// is visible there. This holds even with <c>synchronous_commit=off</c>, where the flush LSN may still be behind
    /// your commit.
    /// </summary>
    /// <remarks>
    /// When the last record ends exactly on a page boundary, the insert position is reported after the next page's
    /// header, a position no replica reports as replayed until more WAL is written (on a quiet primary, for seconds).
    /// Nothing can end inside a header, so the boundary is the same point in the WAL and is what replicas report.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The connection is not open, or is inside a transaction that has
    /// written (its commit would come later).</exception>
    public static async Task<Lsn> GetCurrentInsertLsnAsync(NpgsqlConnection primary, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(primary);
        if (primary.State != System.Data.ConnectionState.Open)
        {
            throw new InvalidOperationException("The primary connection must be open.");
        }

        await using var command = new NpgsqlCommand(
            "select pg_current_wal_insert_lsn(), txid_current_if_assigned() is null, " +
            "current_setting('wal_block_size')::bigint, pg_size_bytes(current_setting('wal_segment_size'))", primary);
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var lsn = new Lsn((ulong)reader.GetFieldValue<NpgsqlLogSequenceNumber>(0));
        if (!reader.GetBoolean(1))
        {
            throw new InvalidOperationException(
                "GetCurrentInsertLsnAsync was called inside a transaction that has written; call it after COMMIT, or the LSN returned would precede your commit.");
        }

        return SkipPageHeader(lsn, (ulong)reader.GetInt64(2), (ulong)reader.GetInt64(3));
    }

    /// <summary>Moves an insert position that sits just past a page header back to the page boundary.</summary>
    internal static Lsn SkipPageHeader(Lsn insert, ulong pageSize, ulong segmentSize)
    {
        ulong value = insert.Value;
        if (value % segmentSize == LongPageHeaderSize)
        {
            return new Lsn(value - LongPageHeaderSize);
        }

        // Offset 24 in any page but a segment's first is right after a short header: nothing is on the page yet.
        if (value % pageSize == ShortPageHeaderSize && value % segmentSize != ShortPageHeaderSize)
        {
            return new Lsn(value - ShortPageHeaderSize);
        }

        return insert;
    }
}
