using System.Runtime.CompilerServices;
using Npgsql;

namespace OrleansLsn.Replication.Snapshot;

/// <summary>
/// One subscriber's copy of tables, read in one snapshot on a connection of its own, turned into snapshot batches
/// (<see cref="ChangeBatch.Snapshot"/>) one chunk at a time: the next chunk is fetched only when the consumer asks
/// for the next batch, so at most two chunks (the batch being delivered and the one read ahead, to know a table's
/// last batch) are in memory, whatever the tables' size.
/// </summary>
internal sealed class SubscriberSnapshot : IAsyncDisposable
{
    private readonly string _slot;
    private readonly NpgsqlConnection _connection;
    private readonly IAsyncEnumerator<SnapshotChunk> _chunks;
    private readonly CancellationTokenSource _stop;
    private readonly DateTimeOffset _takenAt;
    private SnapshotChunk? _ahead;
    private int _disposed;

    private SubscriberSnapshot(string slot, NpgsqlConnection connection, IAsyncEnumerator<SnapshotChunk> chunks, CancellationTokenSource stop, Lsn hold, SnapshotChunk first, DateTimeOffset takenAt, bool atSlotCreation)
    {
        AtSlotCreation = atSlotCreation;
        _slot = slot;
        _connection = connection;
        _chunks = chunks;
        _stop = stop;
        Hold = hold;
        _ahead = first;
        Cut = first.Snapshot;
        _takenAt = takenAt;
    }

    /// <summary>The slot position the stream continues from (every transaction committed before it is in the copy).</summary>
    internal Lsn Hold { get; }

    /// <summary>The snapshot the copy is read in: the stream skips the transactions it holds.</summary>
    internal PgSnapshot Cut { get; }

    /// <summary>Whether the copy is read in the snapshot exported when the slot was created (<see cref="SnapshotPart.AtSlotCreation"/>).</summary>
    internal bool AtSlotCreation { get; }

    /// <summary>
    /// Opens a connection with the walsender's output <paramref name="settings"/>, takes the snapshot (or imports
    /// <paramref name="atSlotCreation"/>'s) and reads the first chunk. <paramref name="hold"/> must have been fixed before
    /// this is called; with <paramref name="atSlotCreation"/> it is that snapshot's consistent point.
    /// </summary>
    internal static async Task<SubscriberSnapshot> StartAsync(
        string slot,
        string publication,
        string connectionString,
        IReadOnlyList<KeyValuePair<string, string>> settings,
        IReadOnlyList<string> tables,
        int chunkRows,
        Lsn hold,
        SlotCreationSnapshot? atSlotCreation,
        TimeProvider time,
        CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(connectionString);
        var stop = new CancellationTokenSource();
        IAsyncEnumerator<SnapshotChunk>? chunks = null;
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (var batch = new NpgsqlBatch(connection))
            {
                foreach ((string name, string value) in settings)
                {
                    var command = new NpgsqlBatchCommand("SELECT pg_catalog.set_config($1, $2, false)");
                    command.Parameters.Add(new NpgsqlParameter { Value = name });
                    command.Parameters.Add(new NpgsqlParameter { Value = value });
                    batch.BatchCommands.Add(command);
                }

                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            chunks = TableSnapshotReader.ReadAsync(connection, tables, chunkRows, exportSnapshot: false, atSlotCreation?.Id, publication, stop.Token).GetAsyncEnumerator(stop.Token);
            using (cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), stop))
            {
                if (!await chunks.MoveNextAsync().ConfigureAwait(false))
                {
                    throw new InvalidOperationException("A snapshot of at least one table yields at least one chunk.");
                }
            }

            return new SubscriberSnapshot(slot, connection, chunks, stop, hold, chunks.Current, time.GetUtcNow(), atSlotCreation is not null);
        }
        catch
        {
            if (chunks is not null)
            {
                await chunks.DisposeAsync().ConfigureAwait(false);
            }

            await connection.DisposeAsync().ConfigureAwait(false);
            stop.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The snapshot batches, table by table, then the completion marker. Each batch is built when asked for; the
    /// enumeration may be abandoned (the copy is then rolled back on <see cref="DisposeAsync"/>).
    /// </summary>
    internal async IAsyncEnumerable<ChangeBatch> BatchesAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using CancellationTokenRegistration link = cancellationToken.Register(static s => ((CancellationTokenSource)s!).Cancel(), _stop);
        string cut = Cut.ToString();
        long sequence = 0;
        long total = 0;
        long rowsBefore = 0;
        while (_ahead is { } chunk)
        {
            _ahead = await _chunks.MoveNextAsync().ConfigureAwait(false) ? _chunks.Current : null;
            bool lastOfTable = _ahead is null || _ahead.Relation.RelationId != chunk.Relation.RelationId;
            var changes = new RowChange[chunk.Rows.Count];
            for (int i = 0; i < changes.Length; i++)
            {
                changes[i] = new RowChange(ChangeKind.Insert, chunk.Relation, chunk.Rows[i]);
            }

            yield return Batch(++sequence, isMarker: false, rowsBefore, changes, new SnapshotPart
            {
                Table = chunk.Relation.QualifiedName,
                RowsBefore = rowsBefore,
                IsLastOfTable = lastOfTable,
                ContinuesFrom = Hold,
                Cut = cut,
                AtSlotCreation = AtSlotCreation,
            });

            total += changes.Length;
            rowsBefore = lastOfTable ? 0 : rowsBefore + changes.Length;
        }

        yield return Batch(++sequence, isMarker: true, 0, [], new SnapshotPart { IsComplete = true, ContinuesFrom = Hold, Cut = cut, TotalRows = total, AtSlotCreation = AtSlotCreation });
    }

    /// <summary>A snapshot batch: no transaction; the stream's position, and the batch's number as sequence and fragment.</summary>
    private ChangeBatch Batch(long sequence, bool isMarker, long firstChangeIndex, RowChange[] changes, SnapshotPart part) => new()
    {
        Slot = _slot,
        Sequence = sequence,
        CommitLsn = Hold,
        EndLsn = Lsn.Invalid,
        Xid = 0,
        CommitTime = _takenAt,
        Fragment = (int)Math.Min(sequence, int.MaxValue),
        IsLastFragment = isMarker,
        FirstChangeIndex = firstChangeIndex,
        Changes = changes,
        Snapshot = part,
    };

    /// <summary>Ends the read: the snapshot's transaction is rolled back and its connection closed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _chunks.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The read is being abandoned; closing the connection ends its transaction anyway.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        await _connection.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
