using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using OrleansLsn;
using OrleansLsn.Client;

// The Orleans client, configured from the OrleansLsn__* environment variables `cluster` printed.
HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
builder.UseOrleansLsnClient();
using IHost host = builder.Build();
await host.StartAsync();
IClusterClient client = host.Services.GetRequiredService<IClusterClient>();

// The application's own connection strings, from the files `cluster` printed under "Your application's connection strings".
string region = Environment.GetEnvironmentVariable("APP_REGION") ?? "eu-west";
await using NpgsqlDataSource primary = NpgsqlDataSource.Create(ReadFile("APP_PRIMARY_FILE"));
await using NpgsqlDataSource replica = NpgsqlDataSource.Create(ReadFile("APP_REPLICA_FILE"));

// 1. Subscribe to the changes of the cluster's slot; completing OnChanges confirms a batch.
var changes = new Changes();
await using ChangeSubscription subscription = await client.SubscribeToChangesAsync("orleanslsn_demo", changes);

// 2. Write on the primary; after the commit, take the write's LSN. (The replica's first connection is opened before,
//    so that the read at once below is not slowed down by logging in.)
Console.WriteLine($"rows on the {region} replica before the write: {await CountAsync(replica)}");
long id;
Lsn lsn;
await using (NpgsqlConnection connection = await primary.OpenConnectionAsync())
{
    await using var insert = new NpgsqlCommand("insert into orleanslsn_demo(note, region) values ('my first write', $1) returning id", connection);
    insert.Parameters.AddWithValue(region);
    id = (long)(await insert.ExecuteScalarAsync())!;
    lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(connection);
}

Console.WriteLine($"wrote row {id}; its LSN is {lsn}");

// 3. Read on the region's replica at once: it may not have the write yet.
Console.WriteLine($"read on the {region} replica at once: {(await ExistsAsync(replica, id) ? "found" : "not there yet")}");

// 4. Wait until the region's replica has replayed the write, then read there again.
LsnWaitResult wait = await client.GetGrain<ILsnTrackerGrain>(region).RequestAndAwait(lsn, TimeSpan.FromSeconds(5));
bool found = wait.IsReady && await ExistsAsync(replica, id);
Console.WriteLine($"tracker of {region}: {wait.Outcome} (replica at {wait.ReplayLsn}); read after the wait: {(found ? "found" : "MISSING")}");

// 5. The same row arrives as a change.
ChangeBatch batch = await changes.WaitForRowAsync(id, TimeSpan.FromSeconds(30));
Console.WriteLine($"change received: commit {batch.CommitLsn}, {batch.Changes.Count} row(s)");

await subscription.DisposeAsync();
await host.StopAsync();
return found ? 0 : 1;

static string ReadFile(string variable) =>
    File.ReadAllText(Environment.GetEnvironmentVariable(variable) ?? throw new InvalidOperationException($"set {variable}")).Trim();

static async Task<long> CountAsync(NpgsqlDataSource source)
{
    await using NpgsqlCommand count = source.CreateCommand("select count(*) from orleanslsn_demo");
    return (long)(await count.ExecuteScalarAsync())!;
}

static async Task<bool> ExistsAsync(NpgsqlDataSource source, long id)
{
    await using NpgsqlCommand select = source.CreateCommand("select exists(select 1 from orleanslsn_demo where id = $1)");
    select.Parameters.AddWithValue(id);
    return (bool)(await select.ExecuteScalarAsync())!;
}

/// <summary>Keeps every batch it receives; a caller can wait for the one with a given row.</summary>
internal sealed class Changes : IChangeObserver
{
    private readonly List<ChangeBatch> _batches = [];
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task OnChanges(ChangeBatch batch)
    {
        TaskCompletionSource arrived;
        lock (_batches)
        {
            _batches.Add(batch);
            arrived = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        arrived.SetResult();
        return Task.CompletedTask;
    }

    public async Task<ChangeBatch> WaitForRowAsync(long id, TimeSpan timeout)
    {
        string key = id.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            Task next;
            lock (_batches)
            {
                if (_batches.FirstOrDefault(b => b.Changes.Any(c => c["id"] == key)) is { } batch)
                {
                    return batch;
                }

                next = _next.Task;
            }

            await next.WaitAsync(deadline.Token);
        }
    }
}
