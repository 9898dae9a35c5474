using System.Data;
using Npgsql;

namespace OrleansLsn.Replication.Snapshot;

/// <summary>
/// The snapshot PostgreSQL exported when the pump created its slot, kept open for the first snapshot subscriber: every
/// transaction that committed before the slot's consistent point is visible in it, and every later one is decoded into
/// the slot's stream from that point on, so a copy read in it joins the stream exactly, with no filter to trust.
/// </summary>
/// <remarks>
/// A slot's exported snapshot lives only until the next command on the replication connection that created it, so it
/// is imported at once into a <c>REPEATABLE READ</c> transaction on a connection of its own, which exports it again
/// (<c>pg_export_snapshot()</c>): that id stays valid while this transaction is open, for any number of readers.
/// The open transaction holds back the primary's xmin horizon (vacuum) while it lives, so it is kept only for a bounded
/// time (<see cref="ReplicationPumpOptions.CreatedSlotSnapshotLifetime"/>).
/// </remarks>
internal sealed class SlotCreationSnapshot : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private int _disposed;

    private SlotCreationSnapshot(NpgsqlConnection connection, string id, Lsn consistentPoint, PgSnapshot cut)
    {
        _connection = connection;
        Id = id;
        ConsistentPoint = consistentPoint;
        Cut = cut;
    }

    /// <summary>The id to import the snapshot with (<c>SET TRANSACTION SNAPSHOT</c>) while this is open.</summary>
    internal string Id { get; }

    /// <summary>The slot's consistent point: its stream starts there, right after the snapshot.</summary>
    internal Lsn ConsistentPoint { get; }

    /// <summary>The snapshot itself, as <c>pg_current_snapshot()</c> gives it.</summary>
    internal PgSnapshot Cut { get; }

    /// <summary>
    /// Imports the slot's exported snapshot <paramref name="slotSnapshot"/> into a transaction on a new connection and
    /// exports it again from there. Call it before anything else is sent on the replication connection that created the slot.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="slotSnapshot"/> is not a snapshot id.</exception>
    /// <exception cref="NpgsqlException">The primary refused or could not be reached; nothing stays open.</exception>
    internal static async Task<SlotCreationSnapshot> ImportAsync(string connectionString, string slotSnapshot, Lsn consistentPoint, CancellationToken cancellationToken)
    {
        if (!TableSnapshotReader.IsSnapshotId(slotSnapshot))
        {
            throw new ArgumentException($"\"{slotSnapshot}\" is not a snapshot id as PostgreSQL exports them.", nameof(slotSnapshot));
        }

        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            NpgsqlTransaction transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
            await using var batch = new NpgsqlBatch(connection, transaction);
            // Checked to be hexadecimal groups and dashes: safe in the literal (the command takes no parameter).
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"SET TRANSACTION SNAPSHOT '{slotSnapshot}'"));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SET TRANSACTION READ ONLY"));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT pg_current_snapshot()::text, pg_export_snapshot()"));
            string cut;
            string id;
            await using (NpgsqlDataReader reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                cut = reader.GetString(0);
                id = reader.GetString(1);
            }

            // The transaction stays open (and with it the snapshot) until this is disposed.
            return new SlotCreationSnapshot(connection, id, consistentPoint, PgSnapshot.Parse(cut));
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Ends the transaction (closing its connection rolls it back), releasing the snapshot.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
