using Npgsql;
using NpgsqlTypes;

namespace OrleansLsn.Tracking;

/// <summary>The writer's side of read-your-writes: which LSN to wait for after a commit on the primary.</summary>
public static class PrimaryLsn
{
    /// <summary>
    /// Returns <c>pg_current_wal_insert_lsn()</c>. Call it on the primary after your transaction has committed (outside
    /// it): the value is at or past your commit record, so once a replica has replayed it, your write is visible there.
    /// This holds even with <c>synchronous_commit=off</c>, where the flush LSN may still be behind your commit.
    /// </summary>
    /// <exception cref="InvalidOperationException">The connection is inside a transaction (the commit would come later)
    /// or points at a server in recovery.</exception>
    public static async Task<Lsn> GetCurrentInsertLsnAsync(NpgsqlConnection primary, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(primary);
        if (primary.State != System.Data.ConnectionState.Open)
        {
            throw new InvalidOperationException("The primary connection must be open.");
        }

        await using var command = new NpgsqlCommand(
            "select pg_current_wal_insert_lsn(), txid_current_if_assigned() is null", primary);
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var lsn = new Lsn((ulong)reader.GetFieldValue<NpgsqlLogSequenceNumber>(0));
        if (!reader.GetBoolean(1))
        {
            throw new InvalidOperationException(
                "GetCurrentInsertLsnAsync was called inside an open transaction; call it after COMMIT, or the LSN returned would precede your commit.");
        }

        return lsn;
    }
}
