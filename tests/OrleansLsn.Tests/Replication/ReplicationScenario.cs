using Npgsql;
using OrleansLsn.Replication;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// A slot, a publication and a table named after the test, on a real primary, dropped before and after. Creates pumps
/// with test-friendly options (short backoff and monitor interval).
/// </summary>
public sealed class ReplicationScenario : IAsyncDisposable
{
    private readonly List<ReplicationPump> _pumps = new();

    private ReplicationScenario(string connectionString, string baseName)
    {
        ConnectionString = connectionString;
        Slot = "s_" + baseName;
        Publication = "p_" + baseName;
        Table = "r_" + baseName;
    }

    public string ConnectionString { get; }

    public string Slot { get; }

    public string Publication { get; }

    public string Table { get; }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Drops leftovers of an earlier run, then creates the table <c>(id bigint primary key, payload text)</c>.</summary>
    public static async Task<ReplicationScenario> CreateAsync(string connectionString, string testName, string columns = "id bigint primary key, payload text")
    {
        string baseName = new string(testName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
        if (baseName.Length > 40)
        {
            baseName = baseName[..32] + "_" + ((uint)StableHash(baseName)).ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
        }

        var scenario = new ReplicationScenario(connectionString, baseName);
        await scenario.DropAsync();
        await scenario.ExecuteAsync($"create table {scenario.Table}({columns})");
        return scenario;
    }

    public ReplicationPump StartPump(Action<ReplicationPumpOptions>? configure = null, bool start = true, Microsoft.Extensions.Logging.ILogger<ReplicationPump>? logger = null)
    {
        var options = new ReplicationPumpOptions
        {
            ConnectionString = ConnectionString,
            SlotName = Slot,
            PublicationName = Publication,
            MonitorInterval = TimeSpan.FromMilliseconds(200),
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(50),
            ReconnectMaxDelay = TimeSpan.FromMilliseconds(500),
            SubscriberRetryInitialDelay = TimeSpan.FromMilliseconds(20),
            SubscriberRetryMaxDelay = TimeSpan.FromMilliseconds(200),
        };
        options.PublicationTables.Add(Table);
        configure?.Invoke(options);
        var pump = new ReplicationPump(options, logger);
        _pumps.Add(pump);
        if (start)
        {
            pump.Start();
        }

        return pump;
    }

    /// <summary>Starts a pump with a <see cref="BatchRecorder"/> subscribed (disposed with the pump) and waits until it streams.</summary>
    public async Task<(ReplicationPump Pump, BatchRecorder Recorder)> StartStreamingAsync(Action<ReplicationPumpOptions>? configure = null)
    {
        ReplicationPump pump = StartPump(configure);
        var recorder = new BatchRecorder();
        pump.Subscribe(recorder.OnChangesAsync);
        await WaitStreamingAsync(pump);
        return (pump, recorder);
    }

    public async Task ExecuteAsync(string sql)
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        cmd.CommandTimeout = 300;
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    public async Task<T?> ScalarAsync<T>(string sql)
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        object? value = await cmd.ExecuteScalarAsync(Ct);
        return value is null or DBNull ? default : (T)value;
    }

    /// <summary>The slot's <c>confirmed_flush_lsn</c> on the server (<see cref="Lsn.Invalid"/> if none).</summary>
    public async Task<Lsn> ConfirmedFlushAsync()
    {
        string? text = await ScalarAsync<string>($"select confirmed_flush_lsn::text from pg_replication_slots where slot_name = '{Slot}'");
        return text is null ? Lsn.Invalid : Lsn.Parse(text);
    }

    /// <summary>The walsender PID serving the slot, or null.</summary>
    public Task<int?> ActivePidAsync() =>
        ScalarAsync<int?>($"select active_pid from pg_replication_slots where slot_name = '{Slot}'");

    /// <summary>Waits until the pump streams (its walsender holds the slot).</summary>
    public async Task WaitStreamingAsync(ReplicationPump pump, TimeSpan? timeout = null)
    {
        await Infrastructure.Wait.UntilAsync(
            () => pump.Status is { State: ReplicationState.Streaming, ServerPid: not null },
            timeout ?? TimeSpan.FromSeconds(30),
            () => $"pump for {Slot} to stream; status {pump.Status}",
            Ct);
    }

    /// <summary>Inserts rows <paramref name="from"/>..<paramref name="to"/> in one transaction and returns the LSN after the commit.</summary>
    public async Task<Lsn> InsertRangeAsync(long from, long to, string payload = "x")
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand($"insert into {Table} select g, $3 from generate_series($1::bigint, $2::bigint) g", conn);
        cmd.CommandTimeout = 300;
        cmd.Parameters.AddWithValue(from);
        cmd.Parameters.AddWithValue(to);
        cmd.Parameters.AddWithValue(payload);
        await cmd.ExecuteNonQueryAsync(Ct);
        await using var lsn = new NpgsqlCommand("select pg_current_wal_lsn()::text", conn);
        return Lsn.Parse((string)(await lsn.ExecuteScalarAsync(Ct))!);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (ReplicationPump pump in _pumps)
        {
            await pump.DisposeAsync();
        }

        try
        {
            await DropAsync();
        }
        catch (NpgsqlException)
        {
            // The server may be down at the end of a fault test; the next run drops leftovers first.
        }
    }

    /// <summary>Drops the slot (terminating a walsender that still holds it), if it exists.</summary>
    public async Task DropSlotAsync()
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync(CancellationToken.None);
        await DropSlotAsync(conn);
    }

    private async Task DropAsync()
    {
        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync(CancellationToken.None);
        await DropSlotAsync(conn);
        await using var rest = new NpgsqlCommand(
            $"drop publication if exists {Publication}; drop table if exists {Table}; "
            + $"do $$ begin if to_regclass('orleanslsn_replication_subscribers') is not null then delete from orleanslsn_replication_subscribers where slot_name = '{Slot}'; end if; end $$",
            conn);
        await rest.ExecuteNonQueryAsync(CancellationToken.None);
    }

    private async Task DropSlotAsync(NpgsqlConnection conn)
    {
        await using var cmd = new NpgsqlCommand(
            $"""
            select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = '{Slot}' and active_pid is not null;
            """, conn);
        await cmd.ExecuteNonQueryAsync(CancellationToken.None);
        // The terminated walsender releases the slot asynchronously; drop with retries.
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await using var drop = new NpgsqlCommand(
                    $"select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '{Slot}'", conn);
                await drop.ExecuteNonQueryAsync(CancellationToken.None);
                break;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && attempt < 100)
            {
                await Task.Delay(50, CancellationToken.None);
            }
        }
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = 23;
            foreach (char c in s)
            {
                h = (h * 31) + c;
            }

            return h;
        }
    }
}
