using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansLsn.Runtime;
using OrleansLsn.Runtime.TestHost;

// A separate process for the runtime tests:
//   silo <secret> [port]                    runs a silo with the test grains; prints "LISTENING <port>"; stops when stdin closes.
//   client <gateway> <secret> <publisher>    subscribes an observer to a publisher grain; prints "SUBSCRIBED", then
//                                            prints "TICK <n>" for every push until killed.
if (args.Length >= 2 && args[0] == "silo")
{
    int port = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 0;
    HostApplicationBuilder builder = Host.CreateApplicationBuilder();
    builder.Logging.ClearProviders();
    builder.Services.AddSingleton<Probe>();
    builder.UseOrleansLsn(silo => silo.UseLocalhostClustering(args[1], port).AddTestGrains());
    using IHost host = builder.Build();
    await host.StartAsync();
    Silo silo = host.Services.GetRequiredService<Silo>();
    Console.WriteLine($"LISTENING {silo.EndPoint.Port}");
    await Console.In.ReadToEndAsync();
    await host.StopAsync();
    return 0;
}

if (args.Length >= 4 && args[0] == "client")
{
    await using ClusterClient client = await ClusterClient.ConnectAsync(args[1], "dev", args[2]);
    var observer = new ConsoleTicker();
    ITickerObserver reference = client.CreateObjectReference<ITickerObserver>(observer);
    await client.GetGrain<IPublisherGrain>(args[3]).Subscribe(reference);
    Console.WriteLine("SUBSCRIBED");
    await Task.Delay(Timeout.Infinite);
    return 0;
}

Console.Error.WriteLine("usage: silo <secret> [port] | client <gateway> <secret> <publisher>");
return 2;

internal sealed class ConsoleTicker : ITickerObserver
{
    public Task OnTick(string source, long number)
    {
        Console.WriteLine($"TICK {number}");
        return Task.CompletedTask;
    }

    public Task OnTickOneWay(string source, long number) => OnTick(source, number);
}
