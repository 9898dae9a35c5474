using Npgsql;
using NpgsqlTypes;

namespace OrleansLsn.Bench.Cluster;

/// <summary>
/// Fly's LSN tracker as its users run it (v0.3, written from its description): one loop on the replica, on one
/// connection, that reads <c>pg_last_wal_replay_lsn()</c> and then sleeps 50 ms; a waiter is released when the loop has
/// seen its LSN.
/// </summary>
internal sealed class FlyLoop : IAsyncDisposable
{
    private static readonly TimeSpan Sleep = TimeSpan.FromMilliseconds(50);
    private readonly NpgsqlConnection _connection;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private readonly Task _loop;
    private ulong _replay;
    private (ulong Target, TaskCompletionSource Released)? _waiter;

    private FlyLoop(NpgsqlConnection connection)
    {
        _connection = connection;
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    public static async Task<FlyLoop> StartAsync(string replica, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(replica);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return new FlyLoop(connection);
    }

    public async Task WaitAsync(Lsn lsn, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_replay >= lsn.Value)
            {
                return;
            }

            _waiter = (lsn.Value, released);
        }

        await released.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _connection.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("select pg_last_wal_replay_lsn()", _connection);
        while (!cancellationToken.IsCancellationRequested)
        {
            var lsn = (NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            TaskCompletionSource? release = null;
            lock (_lock)
            {
                _replay = (ulong)lsn;
                if (_waiter is { } waiter && _replay >= waiter.Target)
                {
                    release = waiter.Released;
                    _waiter = null;
                }
            }

            release?.TrySetResult();
            await Task.Delay(Sleep, cancellationToken).ConfigureAwait(false);
        }
    }
}
