// A client application as a user writes it, built from the OrleansLsn.Client package only: connect to the cluster,
// subscribe to a slot's changes, write on the primary, wait until region eu-west's replica has the write, read it there,
// and receive the change. Exits 0 when all of that happened, 1 otherwise, naming the step.
using System.Diagnostics;
using System.Text.Json;
using Npgsql;
using OrleansLsn;
using OrleansLsn.Client;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: PackageConsumer.Client <run folder>");
    return 2;
}

Dictionary<string, string> settings = JsonSerializer.Deserialize<Dictionary<string, string>>(
    await File.ReadAllTextAsync(Path.Combine(args[0], "connection.json")))!;
var clock = Stopwatch.StartNew();
await using OrleansLsnClient client = await OrleansLsnClient.ConnectAsync(o =>
{
    o.ClusterId = settings["clusterId"];
    o.ServiceId = settings["clusterId"];
    o.MembershipConnectionString = settings["primary"];
    o.Tls.Mode = ClusterTlsMode.Disabled;
});
Console.WriteLine($"connected in {clock.ElapsedMilliseconds} ms");

var changes = new FirstOrder();
await using ChangeSubscription subscription = await client.SubscribeToChangesAsync("orders_slot", changes);

await using NpgsqlDataSource primary = NpgsqlDataSource.Create(settings["primary"]);
await using NpgsqlDataSource replica = NpgsqlDataSource.Create(settings["replica"]);
ReadYourWritesSession session = client.CreateSession(primary, new Dictionary<string, NpgsqlDataSource> { ["eu-west"] = replica });
await session.ExecuteWriteAsync(async connection =>
{
    await using var insert = new NpgsqlCommand("insert into orders values (1, 'book')", connection);
    await insert.ExecuteNonQueryAsync();
});
Lsn written = session.LastWrite ?? throw new InvalidOperationException("the session recorded no write");

LsnWaitResult wait = await client.Cluster.GetGrain<ILsnTrackerGrain>("eu-west").RequestAndAwait(written, TimeSpan.FromSeconds(10));
if (!wait.IsReady)
{
    Console.Error.WriteLine($"FAILED: the tracker of eu-west did not report {written} replayed within 10 s (replay at {wait.ReplayLsn})");
    return 1;
}

await using (NpgsqlConnection read = await session.OpenReadConnectionAsync("eu-west"))
{
    await using var select = new NpgsqlCommand("select item from orders where id = 1", read);
    if (await select.ExecuteScalarAsync() as string != "book")
    {
        Console.Error.WriteLine($"FAILED: eu-west's replica does not have the write although its tracker reported {wait.ReplayLsn} >= {written}");
        return 1;
    }
}

Console.WriteLine($"write at {written} read on eu-west's replica (replay {wait.ReplayLsn})");
ChangeBatch batch;
try
{
    batch = await changes.Batch.WaitAsync(TimeSpan.FromSeconds(30));
}
catch (TimeoutException)
{
    Console.Error.WriteLine("FAILED: no change batch with the order within 30 s");
    return 1;
}

Console.WriteLine($"change batch: slot {batch.Slot}, commit {batch.CommitLsn}, {batch.Changes.Count} change(s), first {batch.Changes[0].Kind} id={batch.Changes[0]["id"]}");
Console.WriteLine($"consumer: ok in {clock.ElapsedMilliseconds} ms");
return 0;

/// <summary>Completes <see cref="Batch"/> with the first batch that inserts order 1.</summary>
internal sealed class FirstOrder : IChangeObserver
{
    private readonly TaskCompletionSource<ChangeBatch> _batch = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<ChangeBatch> Batch => _batch.Task;

    public Task OnChanges(ChangeBatch batch)
    {
        if (batch.Changes.Any(c => c.Kind == ChangeKind.Insert && c["id"] == "1"))
        {
            _batch.TrySetResult(batch);
        }

        return Task.CompletedTask;
    }
}
