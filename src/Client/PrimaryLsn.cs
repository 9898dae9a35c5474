using System.Runtime.CompilerServices;
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

    // The position after the commit, with what SkipPageHeader needs and the primary's identity. The timeline is the
    // first 8 hex digits of the WAL file name at the insert position (pg_walfile_name refuses to run on a standby).
    private const string PositionQuery =
        "select pg_current_wal_insert_lsn(), current_setting('wal_block_size')::bigint, " +
        "pg_size_bytes(current_setting('wal_segment_size')), (select system_identifier from pg_control_system()), " +
        "('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::bigint";

    /// <summary>
    /// Commits <paramref name="transaction"/> and returns the LSN a reader must wait for, with the primary's identity, in
    /// the same round trip as the commit (one batch: whether the transaction wrote, <c>COMMIT</c>, the position).
    /// </summary>
    /// <returns>
    /// The write, or <c>null</c> when the transaction wrote nothing (it is committed all the same; there is nothing to
    /// wait for).
    /// </returns>
    /// <exception cref="InvalidOperationException">The transaction had failed (a statement in it raised an error):
    /// PostgreSQL would turn the commit into a rollback; it is rolled back here and nothing was committed.</exception>
    /// <exception cref="PostgresException">The commit itself failed (for example a deferred constraint or a serialization
    /// failure): PostgreSQL rolled the transaction back and nothing was committed.</exception>
    public static Task<CommittedWrite?> CommitAsync(NpgsqlTransaction transaction, CancellationToken cancellationToken = default) =>
        CommitCoreAsync(transaction, true, cancellationToken);

    /// <summary>The synchronous <see cref="CommitAsync"/>, for synchronous code paths.</summary>
    public static CommittedWrite? Commit(NpgsqlTransaction transaction) =>
        CommitCoreAsync(transaction, false, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// Returns the LSN a reader must wait for after your commit, with the primary's identity: as
    /// <see cref="GetCurrentInsertLsnAsync"/> (one round trip after the commit; prefer <see cref="CommitAsync"/>, which
    /// needs none of its own, when you hold the transaction).
    /// </summary>
    /// <exception cref="InvalidOperationException">The connection is not open, or is inside a transaction that has
    /// written (its commit would come later).</exception>
    public static Task<CommittedWrite> GetCommittedWriteAsync(NpgsqlConnection primary, CancellationToken cancellationToken = default) =>
        GetCommittedWriteCoreAsync(primary, true, cancellationToken);

    /// <summary>The synchronous <see cref="GetCommittedWriteAsync"/>, for synchronous code paths.</summary>
    public static CommittedWrite GetCommittedWrite(NpgsqlConnection primary) =>
        GetCommittedWriteCoreAsync(primary, false, CancellationToken.None).GetAwaiter().GetResult();

    // With async false every call below completes synchronously (Npgsql's synchronous API), so the task is done on return.
    private static async Task<CommittedWrite?> CommitCoreAsync(NpgsqlTransaction transaction, bool async, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        NpgsqlConnection connection = transaction.Connection
            ?? throw new InvalidOperationException("The transaction has already been committed or rolled back.");
        // ConfigureAwait(false) on every await, disposals included: the synchronous variant blocks on this task, and a
        // continuation posted to a synchronization context would then never run.
        var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                // In a failed transaction this raises 25P02 and nothing after it runs, so a commit PostgreSQL would turn
                // into a rollback never reports a position.
                new NpgsqlBatchCommand("select txid_current_if_assigned() is not null"),
                new NpgsqlBatchCommand("commit"),
                new NpgsqlBatchCommand(PositionQuery),
            },
        };
        await using ConfiguredAsyncDisposable disposeBatch = batch.ConfigureAwait(false);
        bool wrote;
        CommittedWrite write;
        try
        {
            NpgsqlDataReader reader = async
                ? await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false)
                : batch.ExecuteReader();
            await using ConfiguredAsyncDisposable disposeReader = reader.ConfigureAwait(false);
            _ = async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read();
            wrote = reader.GetBoolean(0);
            _ = async ? await reader.NextResultAsync(cancellationToken).ConfigureAwait(false) : reader.NextResult();
            _ = async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read();
            write = ReadPosition(reader);
        }
        catch (PostgresException failed) when (failed.SqlState == PostgresErrorCodes.InFailedSqlTransaction)
        {
            if (async)
            {
                await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                transaction.Rollback();
            }

            throw new InvalidOperationException(
                "The transaction had failed before the commit (a statement in it raised an error), so PostgreSQL would have rolled it back: it was rolled back and nothing was committed.",
                failed);
        }

        return wrote ? write : null;
    }

    private static async Task<CommittedWrite> GetCommittedWriteCoreAsync(NpgsqlConnection primary, bool async, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(primary);
        if (primary.State != System.Data.ConnectionState.Open)
        {
            throw new InvalidOperationException("The primary connection must be open.");
        }

        var command = new NpgsqlCommand("select txid_current_if_assigned() is null, " + PositionQuery["select ".Length..], primary);
        await using ConfiguredAsyncDisposable disposeCommand = command.ConfigureAwait(false);
        NpgsqlDataReader reader = async
            ? await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false)
            : command.ExecuteReader();
        await using ConfiguredAsyncDisposable disposeReader = reader.ConfigureAwait(false);
        _ = async ? await reader.ReadAsync(cancellationToken).ConfigureAwait(false) : reader.Read();
        if (!reader.GetBoolean(0))
        {
            throw new InvalidOperationException(
                "GetCommittedWriteAsync was called inside a transaction that has written; call it after COMMIT, or the LSN returned would precede your commit.");
        }

        return ReadPosition(reader, first: 1);
    }

    private static CommittedWrite ReadPosition(NpgsqlDataReader reader, int first = 0)
    {
        var insert = new Lsn((ulong)reader.GetFieldValue<NpgsqlLogSequenceNumber>(first));
        Lsn lsn = SkipPageHeader(insert, (ulong)reader.GetInt64(first + 1), (ulong)reader.GetInt64(first + 2));
        var primary = new PrimaryIdentity(unchecked((ulong)reader.GetInt64(first + 3)), checked((uint)reader.GetInt64(first + 4)));
        return new CommittedWrite(lsn, primary);
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
