// A silo as a user hosts the grains, built from the OrleansLsn packages only: a throw-away local PostgreSQL (primary and
// one hot standby for region eu-west), Orleans membership in it, and the grains configured through the OrleansLsn
// section. Writes <run folder>/connection.json once the silo is active, then runs until stopped (SIGTERM, Ctrl-C).
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using OrleansLsn.Hosting;
using OrleansLsn.Membership;
using OrleansLsn.PostgresLocal;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: PackageConsumer.Silo <run folder>");
    return 2;
}

string runFolder = args[0];
await using LocalPostgresCluster postgres = await LocalPostgresCluster.StartAsync(new LocalPostgresOptions { Name = "consumer", StandbyNames = ["eu-west"] });
string primary = postgres.Primary.ConnectionString;
string replica = postgres.GetStandby("eu-west").ConnectionString;
await PostgresMembershipSchema.ApplyAsync(primary, null, CancellationToken.None);
await using (var connection = new NpgsqlConnection(primary))
{
    await connection.OpenAsync();
    await using var create = new NpgsqlCommand("create table orders(id bigint primary key, item text not null)", connection);
    await create.ExecuteNonQueryAsync();
}

HostApplicationBuilder builder = Host.CreateApplicationBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
{
    ["OrleansLsn:Region"] = "eu-west",
    ["OrleansLsn:PrimaryConnectionString"] = primary,
    ["OrleansLsn:ReplicaConnectionString"] = replica,
    ["OrleansLsn:Replication:Slots:0:Name"] = "orders_slot",
    ["OrleansLsn:Replication:Slots:0:Publication"] = "orders_pub",
    ["OrleansLsn:Replication:Slots:0:Tables:0"] = "orders",
});
int siloPort = FreePort();
int gatewayPort = FreePort();
builder.UseOrleans(silo =>
{
    silo.Configure<ClusterOptions>(o =>
    {
        o.ClusterId = "consumer";
        o.ServiceId = "consumer";
    });
    silo.UseAdoNetClustering(o =>
    {
        o.Invariant = "Npgsql";
        o.ConnectionString = primary;
    });
    silo.ConfigureEndpoints(IPAddress.Loopback, siloPort, gatewayPort);
    silo.AddOrleansLsn(builder.Configuration);
});

using IHost host = builder.Build();
await host.StartAsync();
string file = Path.Combine(runFolder, "connection.json");
await File.WriteAllTextAsync(file + ".tmp", JsonSerializer.Serialize(new Dictionary<string, string>
{
    ["clusterId"] = "consumer",
    ["primary"] = primary,
    ["replica"] = replica,
}));
File.Move(file + ".tmp", file);
Console.WriteLine($"silo active: region eu-west, gateway port {gatewayPort}, PostgreSQL {postgres.Primary.Port} (standby {postgres.GetStandby("eu-west").Port})");
await host.WaitForShutdownAsync();
return 0;

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}
