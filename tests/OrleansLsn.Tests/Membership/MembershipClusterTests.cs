using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using Orleans.Messaging;
using Orleans.Runtime.Membership;
using OrleansLsn.Membership;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Membership;

/// <summary>Real Orleans 10.4.2 silos and a client whose only membership is our PostgreSQL tables.</summary>
public sealed class MembershipClusterTests(PostgresFixture fixture) : MembershipTestBase(fixture)
{
    private const string ClusterId = "membership-e2e";
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task TwoSilosAndClient_OverPostgresMembership_CallWorksAndGracefulStopMarksDead()
    {
        await PostgresMembershipSchema.ApplyAsync(Db, null, Ct);
        int[] ports = FreePorts(4);
        var hosts = new List<IHost>();
        try
        {
            IHost silo1 = BuildSilo(ports[0], ports[1]);
            hosts.Add(silo1);
            await WithinAsync(silo1.StartAsync(Ct), StepTimeout, "start silo 1");
            IHost silo2 = BuildSilo(ports[2], ports[3]);
            hosts.Add(silo2);
            await WithinAsync(silo2.StartAsync(Ct), StepTimeout, "start silo 2");

            await UntilAsync(
                async () => await StatusOfAsync(ports[0]) == StoredMembershipQueries.Active && await StatusOfAsync(ports[2]) == StoredMembershipQueries.Active,
                StepTimeout,
                async () => $"both silos Active (3) in the table; rows: {await DescribeRowsAsync()}");
            StoredMembershipQueries queries = await StoredMembershipQueries.LoadAsync(Db, Ct);
            Assert.Equal(new[] { ports[1], ports[3] }.Order(), (await queries.GatewaysAsync(ClusterId, Ct)).Select(g => g.ProxyPort).Order());

            IHost client = BuildClient();
            hosts.Add(client);
            await WithinAsync(client.StartAsync(Ct), StepTimeout, "start the client");
            Assert.IsType<AdoNetGatewayListProvider>(client.Services.GetRequiredService<IGatewayListProvider>());
            IClusterClient cluster = client.Services.GetRequiredService<IClusterClient>();
            string answer = await cluster.GetGrain<IMembershipEchoGrain>("first").Echo("hello").WaitAsync(StepTimeout, Ct);
            Assert.StartsWith("hello from ", answer, StringComparison.Ordinal);

            await WithinAsync(silo2.StopAsync(Ct), StepTimeout, "graceful stop of silo 2");

            await UntilAsync(
                async () => await StatusOfAsync(ports[2]) == StoredMembershipQueries.Dead,
                StepTimeout,
                async () => $"silo 2 Dead (6) in the table; rows: {await DescribeRowsAsync()}");
            Assert.Equal(StoredMembershipQueries.Active, await StatusOfAsync(ports[0]));
            Assert.Equal([ports[1]], (await queries.GatewaysAsync(ClusterId, Ct)).Select(g => g.ProxyPort));
            string afterStop = await cluster.GetGrain<IMembershipEchoGrain>("second").Echo("still").WaitAsync(StepTimeout, Ct);
            Assert.Contains($"127.0.0.1:{ports[0]}:", afterStop, StringComparison.Ordinal);
        }
        finally
        {
            // Client first, then the silos, so nothing waits on a gateway that is already gone.
            for (int i = hosts.Count - 1; i >= 0; i--)
            {
                using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await hosts[i].StopAsync(stopTimeout.Token);
                hosts[i].Dispose();
            }
        }
    }

    private IHost BuildSilo(int siloPort, int gatewayPort)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleans(silo => silo
            .UseAdoNetClustering(options =>
            {
                options.Invariant = "Npgsql";
                options.ConnectionString = Db;
            })
            .Configure<ClusterOptions>(options =>
            {
                options.ClusterId = ClusterId;
                options.ServiceId = ClusterId;
            })
            .ConfigureEndpoints(IPAddress.Loopback, siloPort, gatewayPort));
        return builder.Build();
    }

    private IHost BuildClient()
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client => client
            .UseAdoNetClustering(options =>
            {
                options.Invariant = "Npgsql";
                options.ConnectionString = Db;
            })
            .Configure<ClusterOptions>(options =>
            {
                options.ClusterId = ClusterId;
                options.ServiceId = ClusterId;
            })
            .Configure<GatewayOptions>(options => options.GatewayListRefreshPeriod = TimeSpan.FromSeconds(1)));
        return builder.Build();
    }

    private async Task<int?> StatusOfAsync(int siloPort)
    {
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT status FROM orleanslsn_membership_silo WHERE deployment_id = $1 AND port = $2 ORDER BY generation DESC LIMIT 1", conn);
        cmd.Parameters.Add(new NpgsqlParameter { Value = ClusterId });
        cmd.Parameters.Add(new NpgsqlParameter { Value = siloPort });
        return await cmd.ExecuteScalarAsync(Ct) as int?;
    }

    private async Task<string> DescribeRowsAsync()
    {
        await using var conn = new NpgsqlConnection(Db);
        await conn.OpenAsync(Ct);
        await using var cmd = new NpgsqlCommand(
            "SELECT coalesce(string_agg(format('%s:%s/%s status=%s gateway=%s', address, port, generation, status, proxy_port), '; '), 'none') FROM orleanslsn_membership_silo", conn);
        return (string)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    private static int[] FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (TcpListener listener in listeners)
            {
                listener.Stop();
            }
        }
    }
}
