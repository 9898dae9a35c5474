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

    /// <summary>Waits until the server is out of recovery (<c>pg_is_in_recovery()</c> is false), e.g. after a promotion.</summary>
    /// <exception cref="TimeoutException">Still in recovery (or unreachable) after <paramref name="timeout"/>.</exception>
    public static async Task WaitForPromotionAsync(string connectionString, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        string last = "not asked yet";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                await using var conn = new NpgsqlConnection(connectionString);
                await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var cmd = new NpgsqlCommand("select pg_is_in_recovery()", conn);
                if (!(bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
                {
                    return;
                }

                last = "still in recovery";
            }
            catch (NpgsqlException e)
            {
                last = "unreachable: " + e.Message;
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        throw new TimeoutException($"The server did not leave recovery within {timeout.TotalSeconds:0.#} s ({last}).");
    }

    /// <summary>
    /// Waits until the standby holds a synchronised, persistent copy of the logical slot <paramref name="slotName"/>
    /// (<c>synced</c> and not <c>temporary</c> in its <c>pg_replication_slots</c>, not invalidated) whose
    /// <c>confirmed_flush_lsn</c> is at least <paramref name="minConfirmedFlush"/> (if given). The slot sync worker
    /// copies a failover slot only once the primary's slot has moved past what the standby already has, so the slot
    /// must be consumed (and acknowledged) on the primary for this to finish.
    /// </summary>
    /// <returns>The synchronised copy's <c>confirmed_flush_lsn</c>.</returns>
    /// <exception cref="TimeoutException">Not synchronised in time; the message has the copy's last state.</exception>
    public static async Task<NpgsqlLogSequenceNumber> WaitForSyncedSlotAsync(
        string standbyConnectionString,
        string slotName,
        NpgsqlLogSequenceNumber? minConfirmedFlush,
        TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slotName);
        DateTime deadline = DateTime.UtcNow + timeout;
        string last = "not asked yet";
        await using var conn = new NpgsqlConnection(standbyConnectionString);
        await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = new NpgsqlCommand(
            "select synced, temporary, invalidation_reason, confirmed_flush_lsn from pg_replication_slots where slot_name = $1", conn);
        cmd.Parameters.AddWithValue(slotName);
        while (true)
        {
            await using (NpgsqlDataReader reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    bool synced = reader.GetBoolean(0);
                    bool temporary = reader.GetBoolean(1);
                    string? invalidated = reader.IsDBNull(2) ? null : reader.GetString(2);
                    NpgsqlLogSequenceNumber? confirmed = reader.IsDBNull(3) ? null : reader.GetFieldValue<NpgsqlLogSequenceNumber>(3);
                    last = $"synced {synced}, temporary {temporary}, invalidation {invalidated ?? "none"}, confirmed_flush_lsn {confirmed?.ToString() ?? "null"}";
                    if (synced && !temporary && invalidated is null && confirmed is { } c && (minConfirmedFlush is null || c >= minConfirmedFlush.Value))
                    {
                        return c;
                    }
                }
                else
                {
                    last = "no such slot on the standby yet";
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Slot '{slotName}' was not synchronised to the standby within {timeout.TotalSeconds:0.#} s ({last}).");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }
}
