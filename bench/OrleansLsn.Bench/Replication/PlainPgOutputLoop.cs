using System.Diagnostics;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// The thinnest Npgsql consumer: <see cref="LogicalReplicationConnection"/> and <c>StartReplication</c>, reading every
/// column of every inserted row as text (<c>await value.Get&lt;string&gt;()</c>), nothing else. A reference for the
/// pump's own overhead.
/// </summary>
internal static class PlainPgOutputLoop
{
    /// <summary>The <c>application_name</c> of its connection.</summary>
    public const string ApplicationName = "bench-npgsql-loop";

    /// <summary>
    /// Streams <paramref name="slot"/> from its position until the commit that completes <paramref name="expectedRows"/>
    /// inserted rows, and returns the time from opening the connection to that commit.
    /// </summary>
    /// <exception cref="TimeoutException">The rows did not all arrive within <paramref name="timeout"/>.</exception>
    public static async Task<TimeSpan> StreamAsync(
        string connectionString,
        string slot,
        string publication,
        PgOutputProtocolVersion protocol,
        long expectedRows,
        TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        string named = new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = ApplicationName }.ConnectionString;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        CancellationToken token = limit.Token;
        long rows = 0;
        long start = Stopwatch.GetTimestamp();
        try
        {
            await using var connection = new LogicalReplicationConnection(named);
            await connection.Open(token).ConfigureAwait(false);
            var options = new PgOutputReplicationOptions(publication, protocol);
            await foreach (PgOutputReplicationMessage message in connection
                .StartReplication(new PgOutputReplicationSlot(slot), options, token)
                .ConfigureAwait(false))
            {
                if (message is InsertMessage insert)
                {
                    await foreach (ReplicationValue value in insert.NewRow.WithCancellation(token).ConfigureAwait(false))
                    {
                        if (!value.IsDBNull)
                        {
                            _ = await value.Get<string>(token).ConfigureAwait(false);
                        }
                    }

                    rows++;
                }
                else if (message is CommitMessage && rows >= expectedRows)
                {
                    return Stopwatch.GetElapsedTime(start);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"The plain Npgsql loop on slot {slot} received {rows} of {expectedRows} rows within {timeout.TotalSeconds:0} s.");
        }

        throw new InvalidOperationException($"The server ended the stream of slot {slot} after {rows} of {expectedRows} rows.");
    }
}
