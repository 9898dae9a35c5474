using Npgsql;

namespace OrleansLsn.Tests.Cluster;

/// <summary>The tables, slots and publications of <see cref="TestSlots"/>: dropped (leftovers of an earlier run) and created.</summary>
public static class ReplicationTables
{
    public static async Task PrepareAsync(string primary, IEnumerable<string> slots)
    {
        await DropAsync(primary, slots);
        await using var conn = new NpgsqlConnection(primary);
        await conn.OpenAsync();
        foreach (string slot in slots)
        {
            await using var cmd = new NpgsqlCommand($"create table {TestSlots.Table(slot)}(id bigint primary key, payload text)", conn);
            await cmd.ExecuteNonQueryAsync();
        }
    }

    public static async Task DropAsync(string primary, IEnumerable<string> slots)
    {
        await using var conn = new NpgsqlConnection(primary);
        await conn.OpenAsync();
        foreach (string slot in slots)
        {
            // A slot still held by a walsender (a pump of a silo being torn down) is terminated first; the backend
            // goes away asynchronously, so wait until the slot is free before dropping it.
            for (int attempt = 0; attempt < 100; attempt++)
            {
                await using var free = new NpgsqlCommand(
                    "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active_pid is not null", conn);
                free.Parameters.AddWithValue(slot);
                if (await free.ExecuteScalarAsync() is null)
                {
                    break;
                }

                await Task.Delay(100);
            }

            await using var cmd = new NpgsqlCommand(
                $"""
                select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '{slot}' and not active;
                drop publication if exists {TestSlots.Publication(slot)};
                drop table if exists {TestSlots.Table(slot)};
                """, conn);
            await cmd.ExecuteNonQueryAsync();
        }
    }
}
