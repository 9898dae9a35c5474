using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrleansLsn.Client;
using OrleansLsn.Samples.TodoWeb;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Bench.Web;

/// <summary>
/// One instance of the to-do sample (<see cref="TodoApp"/>) for one read policy, listening on a free loopback port,
/// with its own Orleans client of the deployment. Policies other than <c>ours</c> replace the sample's
/// <see cref="TodoReads"/> and never let the read decision wait (<c>MaxWait</c> 0, <c>OnTimeout</c> Stale).
/// </summary>
internal sealed class PolicyApp : IAsyncDisposable
{
    private readonly WebApplication _app;

    private PolicyApp(string policy, WebApplication app, Uri address)
    {
        Policy = policy;
        _app = app;
        Address = address;
    }

    public string Policy { get; }

    /// <summary>The base address, <c>http://127.0.0.1:PORT/</c>.</summary>
    public Uri Address { get; }

    /// <summary>The app's read decision bound (<c>OrleansLsn:Reads:MaxWait</c> and <c>OnTimeout</c>).</summary>
    public ReadBound Bound => _app.Services.GetRequiredService<ReadRouter>().DefaultBound;

    /// <summary>Builds and starts the sample for <paramref name="policy"/>, reading in <paramref name="region"/>.</summary>
    public static async Task<PolicyApp> StartAsync(LocalDeployment deployment, string region, string policy, CancellationToken cancellationToken)
    {
        Dictionary<string, string?> settings = deployment.ReadRoutingSettings(region);
        if (policy != WebPolicy.Ours)
        {
            // The decision middleware still runs (the sample asks for it), but never waits: a check in memory.
            settings[$"{ReadRoutingOptions.Section}:MaxWait"] = "00:00:00";
            settings[$"{ReadRoutingOptions.Section}:OnTimeout"] = nameof(ReadTimeoutAction.Stale);
        }

        WebApplication app = TodoApp.Build([], builder =>
        {
            builder.Configuration.AddInMemoryCollection(settings);
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning);

            // Keys in memory: nothing written under the user's home; each app protects its own users' cookies.
            builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
            switch (policy)
            {
                case WebPolicy.Ours:
                    break;
                case WebPolicy.Primary:
                    builder.Services.AddSingleton<TodoReads, PrimaryReads>();
                    break;
                case WebPolicy.Replica:
                    builder.Services.AddSingleton<TodoReads, ReplicaReads>();
                    break;
                case WebPolicy.Rails:
                    builder.Services.AddSingleton(TimeProvider.System);
                    builder.Services.AddSingleton<TodoReads, RailsReads>();
                    builder.Services.AddSingleton<IStartupFilter, RailsReads.LastWriteFilter>();
                    break;
                default:
                    throw new ArgumentException($"Unknown policy '{policy}'.", nameof(policy));
            }
        });
        try
        {
            await TodoApp.StartAsync(app, cancellationToken).ConfigureAwait(false);
            string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new PolicyApp(policy, app, new Uri(address.TrimEnd('/') + "/"));
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
