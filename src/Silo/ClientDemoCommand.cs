using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.Hosting;
using OrleansLsn.Silo.Hosting;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>client-demo</c>: an Orleans client of a running cluster (docker-compose's one-shot demo service). For each
/// <c>--replica REGION=CONNECTION_STRING</c>: writes a row on the primary, waits on that region's
/// <see cref="ILsnTrackerGrain"/> for the write's LSN, reads the row on the region's replica, and prints what happened
/// with timings. Exits 0 when every region served its write, 1 otherwise. Settings come from the same <c>OrleansLsn</c>
/// section as a silo's: <c>ClusterId</c>/<c>ServiceId</c>, <c>PrimaryConnectionString</c>,
/// <c>MembershipConnectionString</c> (the gateways are read from the membership table: a client must reach the silos at
/// their advertised addresses), and <c>Tls:*</c> with a client certificate.
/// </summary>
internal static class ClientDemoCommand
{
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(10);

    internal static Command Create()
    {
        var replicas = new Option<string[]>("--replica") { Description = "REGION=CONNECTION_STRING of a region's replica (repeatable).", Required = true };
        var command = new Command("client-demo", "Read-your-writes in each region through a running cluster, as an Orleans client; exits 0 if every region served its write.")
        {
            replicas,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((ParseResult result, CancellationToken cancellationToken) =>
            RunAsync(result.GetValue(replicas)!, [.. result.UnmatchedTokens], cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(string[] replicaArgs, string[] args, CancellationToken cancellationToken)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddCommandLine(args).Build();
        IConfigurationSection section = configuration.GetSection(OrleansLsnOptions.SectionName);
        var host = new SiloHostOptions();
        section.Bind(host);
        string? primary = section["PrimaryConnectionString"];
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(primary))
        {
            failures.Add("OrleansLsn:PrimaryConnectionString is required.");
        }

        var regions = new List<(string Region, string Replica)>();
        foreach (string arg in replicaArgs)
        {
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == arg.Length - 1)
            {
                failures.Add($"--replica '{arg.Split(';')[0]}...': expected REGION=CONNECTION_STRING.");
                continue;
            }

            regions.Add((arg[..eq], arg[(eq + 1)..]));
        }

        if (failures.Count > 0)
        {
            Console.Error.WriteLine($"client-demo: {failures.Count} problem(s):");
            failures.ForEach(f => Console.Error.WriteLine("  - " + f));
            return SiloProgram.ConfigurationError;
        }

        // The client library, configured from the same section: membership, gateways, TLS with the client certificate.
        var started = Stopwatch.StartNew();
        await using OrleansLsnClient client = await OrleansLsnClient.ConnectAsync(
            o => section.Bind(o),
            b => b.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning),
            cancellationToken);
        Console.WriteLine($"client-demo: connected to cluster '{host.ClusterId}' in {started.Elapsed.TotalSeconds:0.00} s");

        await using (var conn = new NpgsqlConnection(primary))
        {
            await conn.OpenAsync(cancellationToken);
            await using var create = new NpgsqlCommand(
                "create table if not exists public.orleanslsn_demo (id bigint generated always as identity primary key, region text not null, at timestamptz not null default now())", conn);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        int served = 0;
        foreach ((string region, string replica) in regions)
        {
            served += await ReadYourWriteAsync(client.Cluster, primary!, region, replica, cancellationToken) ? 1 : 0;
        }

        Console.WriteLine($"client-demo: {served} of {regions.Count} region(s) served their write");
        return served == regions.Count ? 0 : 1;
    }

    private static async Task<bool> ReadYourWriteAsync(IClusterClient client, string primary, string region, string replica, CancellationToken cancellationToken)
    {
        ILsnTrackerGrain tracker = client.GetGrain<ILsnTrackerGrain>(region);
        LsnTrackerStatus status = await tracker.GetStatus();
        long id;
        Lsn lsn;
        await using (var conn = new NpgsqlConnection(primary))
        {
            await conn.OpenAsync(cancellationToken);
            await using var insert = new NpgsqlCommand("insert into public.orleanslsn_demo(region) values ($1) returning id", conn);
            insert.Parameters.AddWithValue(region);
            id = (long)(await insert.ExecuteScalarAsync(cancellationToken))!;
            lsn = await PrimaryLsn.GetCurrentInsertLsnAsync(conn, cancellationToken);
        }

        var waited = Stopwatch.StartNew();
        LsnWaitResult result = await tracker.RequestAndAwait(lsn, WaitTimeout, cancellationToken);
        waited.Stop();
        if (!result.IsReady)
        {
            Console.WriteLine($"  {region}: write {id} at {lsn} NOT replicated within {WaitTimeout.TotalSeconds:0} s (replay {result.ReplayLsn}); tracker on {status.Silo}");
            return false;
        }

        await using var read = new NpgsqlConnection(replica);
        await read.OpenAsync(cancellationToken);
        await using var select = new NpgsqlCommand("select count(*) from public.orleanslsn_demo where id = $1", read);
        select.Parameters.AddWithValue(id);
        bool seen = (long)(await select.ExecuteScalarAsync(cancellationToken))! == 1;
        Console.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"  {region}: write {id} at {lsn} replayed (replay {result.ReplayLsn}) after {waited.Elapsed.TotalMilliseconds:0.0} ms; read on the replica: {(seen ? "found" : "MISSING")}; tracker on silo {status.Silo}"));
        return seen;
    }
}
