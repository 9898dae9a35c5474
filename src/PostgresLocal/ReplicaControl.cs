using Npgsql;
using NpgsqlTypes;

namespace OrleansLsn.PostgresLocal;

/// <summary>SQL-level controls of a hot standby; they work on any server reachable by connection string.</summary>
public static class ReplicaControl
{
    /// <summary>Pauses WAL replay and waits until the standby reports <c>paused</c>.</summary>
    public static async Task PauseReplayAsync(string standbyConnectionString, CancellationToken cancellationToken = default)
    {
        await using var conn = new NpgsqlConnection(standbyConnectionString);
        await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var pause = new NpgsqlCommand("select pg_wal_replay_pause()", conn))
        {
            await pause.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // pg_wal_replay_pause() only requests the pause; it takes effect at the next record boundary.
        await using var state = new NpgsqlCommand("select pg_get_wal_replay_pause_state()", conn);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        while ((string?)await state.ExecuteScalarAsync(deadline.Token).ConfigureAwait(false) != "paused")
        {
            await Task.Delay(5, deadline.Token).ConfigureAwait(false);
        }
    }

    /// <summary>Resumes WAL replay.</summary>
    public static async Task ResumeReplayAsync(string standbyConnectionString, CancellationToken cancellationToken = default)
    {
        await using var conn = new NpgsqlConnection(standbyConnectionString);
        await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand("select pg_wal_replay_resume()", conn);
        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits until the standby's replay LSN reaches the primary's current flush LSN.</summary>
    /// <exception cref="TimeoutException">Not caught up in time; the message has both positions.</exception>
    public static async Task WaitForCatchUpAsync(
        string primaryConnectionString, string standbyConnectionString, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        NpgsqlLogSequenceNumber target;
        await using (var primary = new NpgsqlConnection(primaryConnectionString))
        {
            await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var cmd = new NpgsqlCommand("select pg_current_wal_flush_lsn()", primary);
            target = (NpgsqlLogSequenceNumber)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        DateTime deadline = DateTime.UtcNow + timeout;
        NpgsqlLogSequenceNumber? replay = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                await using var standby = new NpgsqlConnection(standbyConnectionString);
                await standby.OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var cmd = new NpgsqlCommand("select pg_last_wal_replay_lsn()", standby);
                while (DateTime.UtcNow < deadline)
                {
                    replay = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is NpgsqlLogSequenceNumber r ? r : null;
                    if (replay >= target)
                    {
                        return;
                    }

                    await Task.Delay(2, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (NpgsqlException)
            {
                // Standby still starting up: retry until the deadline.
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }

        throw new TimeoutException($"Standby did not catch up within {timeout.TotalSeconds:0.#} s: expected replay >= {target}, actual {replay?.ToString() ?? "unknown"}.");
    }
}
