using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// A consumer with Npgsql's defaults (<c>WalReceiverStatusInterval</c> = 10 s) that pauses the naive way: it stops
/// reading the stream. The anchor for disconnects while paused.
/// </summary>
internal sealed class DefaultNpgsqlConsumer : IAsyncDisposable
{
    private readonly LogicalReplicationConnection _connection;
    private IAsyncEnumerator<PgOutputReplicationMessage>? _messages;

    private DefaultNpgsqlConsumer(LogicalReplicationConnection connection)
    {
        _connection = connection;
    }

    /// <summary>Opens the connection (defaults, except the application name); nothing is streamed yet.</summary>
    public static async Task<DefaultNpgsqlConsumer> OpenAsync(string connectionString, string applicationName, CancellationToken cancellationToken)
    {
        var connection = new LogicalReplicationConnection(
            new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = applicationName }.ConnectionString);
        try
        {
            await connection.Open(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new DefaultNpgsqlConsumer(connection);
    }

    /// <summary>Starts streaming and reads up to the first commit; after that, nothing reads the stream any more.</summary>
    public async Task ReadFirstTransactionAsync(string slot, string publication, PgOutputProtocolVersion protocol, CancellationToken cancellationToken)
    {
        _messages = _connection
            .StartReplication(new PgOutputReplicationSlot(slot), new PgOutputReplicationOptions(publication, protocol), cancellationToken)
            .GetAsyncEnumerator(cancellationToken);
        while (await _messages.MoveNextAsync().ConfigureAwait(false))
        {
            if (_messages.Current is InsertMessage insert)
            {
                await foreach (ReplicationValue value in insert.NewRow.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    _ = value.IsDBNull ? null : await value.Get<string>(cancellationToken).ConfigureAwait(false);
                }
            }
            else if (_messages.Current is CommitMessage)
            {
                return;
            }
        }

        throw new InvalidOperationException($"The server ended the stream of slot {slot} before the first commit.");
    }

    public async ValueTask DisposeAsync()
    {
        // The server has probably cut the connection already (that is what this consumer shows): closing may fail.
        try
        {
            if (_messages is not null)
            {
                await _messages.DisposeAsync().ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // Any failure here is the lost connection being noticed.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        try
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Same.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
