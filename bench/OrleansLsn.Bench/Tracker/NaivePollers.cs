using Npgsql;
using NpgsqlTypes;

namespace OrleansLsn.Bench.Tracker;

/// <summary>
/// The naive alternative to the tracker: every waiter polls the standby itself, <c>select pg_last_wal_replay_lsn() &gt;= $1</c>
/// then a 10 ms sleep, on a connection borrowed from a bounded pool for each query.
/// </summary>
internal sealed class NaivePollers
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);
    private const string Sql = "select pg_last_wal_replay_lsn() >= $1::pg_lsn";

    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlLogSequenceNumber _target;
    private long _completed;
    private long _errors;
    private Exception? _firstError;

    public NaivePollers(NpgsqlDataSource dataSource, Lsn target)
    {
        _dataSource = dataSource;
        _target = new NpgsqlLogSequenceNumber(target.Value);
    }

    /// <summary>Queries that returned.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    public long Errors => Interlocked.Read(ref _errors);

    public Exception? FirstError => Volatile.Read(ref _firstError);

    /// <summary>One waiter's loop, until <paramref name="stop"/>. Failures are counted, never thrown.</summary>
    public async Task LoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await using (NpgsqlConnection connection = await _dataSource.OpenConnectionAsync(stop).ConfigureAwait(false))
                {
                    await using var command = new NpgsqlCommand(Sql, connection);
                    command.Parameters.Add(new NpgsqlParameter<NpgsqlLogSequenceNumber> { NpgsqlDbType = NpgsqlDbType.PgLsn, TypedValue = _target });

                    // Prepared statements persist on pooled connections, so this is a round trip only on a connection's first use.
                    await command.PrepareAsync(CancellationToken.None).ConfigureAwait(false);

                    // Not cancelled mid-query: cancelling would send a cancel request per connection and skew the count.
                    await command.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
                }

                Interlocked.Increment(ref _completed);
                await Task.Delay(PollInterval, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                Interlocked.Increment(ref _errors);
                Interlocked.CompareExchange(ref _firstError, ex, null);
                try
                {
                    await Task.Delay(PollInterval, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}
