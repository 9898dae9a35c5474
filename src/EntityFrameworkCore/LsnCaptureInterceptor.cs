using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;
using OrleansLsn.Client;

namespace OrleansLsn.EntityFrameworkCore;

/// <summary>
/// Records the LSN of every write one EF Core context commits (one instance per context, added by
/// <see cref="UseLsnCaptureExtensions"/>):
/// <list type="bullet">
/// <item>a transaction EF Core commits (an explicit one, or the one <c>SaveChanges</c> opens for several statements): the
/// commit is sent with the LSN query in one batch (<see cref="PrimaryLsn.CommitAsync"/>), so it costs no round trip;</item>
/// <item>a write EF Core runs without a transaction (a single-statement <c>SaveChanges</c>, <c>ExecuteUpdate</c>,
/// <c>ExecuteDelete</c>, a raw SQL non-query): PostgreSQL committed it when the statement ended, so the position is read
/// right after it (<see cref="PrimaryLsn.GetCommittedWriteAsync"/>), one round trip;</item>
/// <item>queries, writes inside a transaction that is rolled back, and statements that changed no row: nothing.</item>
/// </list>
/// Commands sent on the context's connection without EF Core (<c>GetDbConnection()</c>) are not seen: commit those with
/// <see cref="PrimaryLsn.CommitAsync"/>.
/// </summary>
internal sealed class LsnCaptureInterceptor(LsnWriteRecorder recorder) : IDbTransactionInterceptor, IDbCommandInterceptor, ISaveChangesInterceptor
{
    // Whether the SaveChanges under way committed through the transaction path already (then its end records nothing).
    private bool _committedDuringSave;

    public async ValueTask<InterceptionResult> TransactionCommittingAsync(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        if (result.IsSuppressed || transaction is not NpgsqlTransaction npgsql)
        {
            return result;
        }

        Record(await PrimaryLsn.CommitAsync(npgsql, cancellationToken).ConfigureAwait(false));
        return InterceptionResult.Suppress();
    }

    public InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        if (result.IsSuppressed || transaction is not NpgsqlTransaction npgsql)
        {
            return result;
        }

        Record(PrimaryLsn.Commit(npgsql));
        return InterceptionResult.Suppress();
    }

    public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        _committedDuringSave = false;
        return ValueTask.FromResult(result);
    }

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        _committedDuringSave = false;
        return result;
    }

    public async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (NeedsReadAfterSave(eventData, result) is { } context)
        {
            await ReadAfterAutocommitAsync(context, true, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        if (NeedsReadAfterSave(eventData, result) is { } context)
        {
            ReadAfterAutocommitAsync(context, false, CancellationToken.None).GetAwaiter().GetResult();
        }

        return result;
    }

    public async ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (IsAutocommitWrite(command, eventData, result) && eventData.Context is { } context)
        {
            await ReadAfterAutocommitAsync(context, true, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    public int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        if (IsAutocommitWrite(command, eventData, result) && eventData.Context is { } context)
        {
            ReadAfterAutocommitAsync(context, false, CancellationToken.None).GetAwaiter().GetResult();
        }

        return result;
    }

    private void Record(CommittedWrite? write)
    {
        _committedDuringSave = true;
        if (write is { } committed)
        {
            recorder.Record(committed);
        }
    }

    // SaveChanges wrote without a transaction of its own or of the caller's (EF Core runs a single statement so): the
    // statement committed as it ended.
    private DbContext? NeedsReadAfterSave(SaveChangesCompletedEventData eventData, int result) =>
        result > 0 && !_committedDuringSave && eventData.Context is { } context && context.Database.CurrentTransaction is null ? context : null;

    // ExecuteUpdate, ExecuteDelete and raw SQL run outside a transaction (inside one, its commit records them); SaveChanges'
    // own statements are left to its end. -1 is what PostgreSQL reports for statements without a row count (DDL): those
    // may have written too.
    private static bool IsAutocommitWrite(DbCommand command, CommandExecutedEventData eventData, int result) =>
        result != 0
        && eventData.CommandSource is CommandSource.ExecuteUpdate or CommandSource.ExecuteDelete or CommandSource.ExecuteSqlRaw
        && command.Transaction is null
        && eventData.Context?.Database.CurrentTransaction is null;

    private async Task ReadAfterAutocommitAsync(DbContext context, bool async, CancellationToken cancellationToken)
    {
        if (context.Database.GetDbConnection() is not NpgsqlConnection connection)
        {
            return;
        }

        bool opened = false;
        if (connection.State != System.Data.ConnectionState.Open)
        {
            // EF Core closed the connection it opened for the statement; a pooled one opens without a round trip.
            if (async)
            {
                await context.Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                context.Database.OpenConnection();
            }

            opened = true;
        }

        try
        {
            recorder.Record(async
                ? await PrimaryLsn.GetCommittedWriteAsync(connection, cancellationToken).ConfigureAwait(false)
                : PrimaryLsn.GetCommittedWrite(connection));
        }
        finally
        {
            if (opened)
            {
                if (async)
                {
                    await context.Database.CloseConnectionAsync().ConfigureAwait(false);
                }
                else
                {
                    context.Database.CloseConnection();
                }
            }
        }
    }
}
