using System.CommandLine;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Samples.TodoWeb;

/// <summary>
/// <c>dotnet run --project samples/TodoWeb</c>: with <c>OrleansLsn:Reads</c> configured, the sample against that cluster;
/// without, the embedded default: a local primary with a replica per region (eu-west's applying each commit late), four
/// silo processes, and the sample reading in eu-west. Prints the URL; Ctrl-C stops and removes everything.
/// </summary>
internal static class Program
{
    private const string DelayedRegion = "eu-west";

    private static async Task<int> Main(string[] args)
    {
        var port = new Option<int>("--port") { Description = "The port to listen on, on 127.0.0.1 (0: any free one).", DefaultValueFactory = _ => 5080 };
        var replayDelay = new Option<int>("--replay-delay")
        {
            Description = $"Embedded default only: milliseconds {DelayedRegion}'s replica waits before applying each commit (recovery_min_apply_delay). Default 500.",
            DefaultValueFactory = _ => 500,
        };
        var region = new Option<string>("--region") { Description = "Embedded default only: the region the sample reads in.", DefaultValueFactory = _ => DelayedRegion };
        var root = new RootCommand("The OrleansLsn to-do sample: read-your-writes for ASP.NET Core and EF Core.") { port, replayDelay, region };
        root.TreatUnmatchedTokensAsErrors = false;
        root.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            int listen = result.GetValue(port);
            int delay = result.GetValue(replayDelay);
            if (listen is < 0 or > 65535 || delay is < 0 or > 60_000)
            {
                Console.Error.WriteLine("--port must be 0 to 65535 and --replay-delay 0 to 60000.");
                return 2;
            }

            try
            {
                IConfiguration configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddCommandLine(result.UnmatchedTokens.ToArray()).Build();
                return configuration[$"{Client.ReadRoutingOptions.Section}:Primary"] is { Length: > 0 } || configuration[$"{Client.ReadRoutingOptions.Section}:PrimaryFile"] is { Length: > 0 }
                    ? await RunAsync([.. result.UnmatchedTokens], null, listen, cancellationToken)
                    : await RunLocalAsync(listen, delay, result.GetValue(region)!, cancellationToken);
            }
            catch (LocalPostgresException e)
            {
                Console.Error.WriteLine($"Could not start the local PostgreSQL: {e.Message}");
                return 3;
            }
        });
        return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) });
    }

    private static async Task<int> RunLocalAsync(int port, int replayDelayMs, string region, CancellationToken cancellationToken)
    {
        var options = new LocalDeploymentOptions { Name = "todo-web", PasswordAuthentication = true };
        if (!options.Regions.Contains(region))
        {
            Console.Error.WriteLine($"--region must be one of {string.Join(", ", options.Regions)}.");
            return 2;
        }

        options.ReplayDelays[DelayedRegion] = TimeSpan.FromMilliseconds(replayDelayMs);
        Console.WriteLine($"No {Client.ReadRoutingOptions.Section} configured: starting the embedded default (local PostgreSQL, replicas in {string.Join(" and ", options.Regions)}, four silos).");
        await using LocalDeployment deployment = await LocalDeployment.StartAsync(options, Console.WriteLine, cancellationToken);
        Dictionary<string, string?> settings = deployment.ReadRoutingSettings(region);
        Console.WriteLine($"{DelayedRegion}'s replica applies each commit {replayDelayMs} ms late; the sample reads in {region}.");
        return await RunAsync([], settings, port, cancellationToken);
    }

    private static async Task<int> RunAsync(string[] args, Dictionary<string, string?>? settings, int port, CancellationToken cancellationToken)
    {
        await using WebApplication app = TodoApp.Build(args, builder =>
        {
            if (settings is not null)
            {
                builder.Configuration.AddInMemoryCollection(settings);
            }

            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        });
        await TodoApp.StartAsync(app, cancellationToken);
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Console.WriteLine($"The to-do sample is at {url}/ : add an item, and the list after the redirect says where its read went and why.");
        Console.WriteLine("Delete the cookie orleanslsn-rw to see a read without a token. Ctrl-C stops everything.");
        Console.Out.Flush();
        await Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        Console.WriteLine("Stopping...");
        await app.StopAsync(CancellationToken.None);
        return 0;
    }
}
