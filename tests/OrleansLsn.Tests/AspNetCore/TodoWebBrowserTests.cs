using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Samples.TodoWeb;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace OrleansLsn.Tests.AspNetCore;

/// <summary>
/// The to-do sample (<c>samples/TodoWeb</c>) in a real browser (headless Chromium) against the real cluster, primary and
/// us-east replica: the form submitted while the replica's replay is held, the page after the redirect waits for it,
/// shows the item and says the read came from the replica after a wait; with the cookie removed the page reads the
/// replica at once and says the request carried no token.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed partial class TodoWebBrowserTests(ClusterFixture fixture, BrowserFixture browser) : IClassFixture<BrowserFixture>, IAsyncLifetime
{
    private static readonly PageAssertionsToHaveURLOptions Slow = new() { Timeout = 30_000 };
    private static readonly LocatorAssertionsToHaveAttributeOptions SlowAttribute = new() { Timeout = 30_000 };
    private static readonly LocatorAssertionsToContainTextOptions SlowText = new() { Timeout = 30_000 };

    private WebApplication? _app;
    private IBrowserContext? _context;
    private string _base = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _app = TodoApp.Build([], builder =>
        {
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["OrleansLsn:Reads:Region"] = LsnTestCluster.UsEast,
                ["OrleansLsn:Reads:Primary"] = fixture.Postgres.PrimaryConnectionString,
                ["OrleansLsn:Reads:Replicas:us-east"] = fixture.Postgres.Standby2ConnectionString,
                ["OrleansLsn:Reads:Replicas:eu-west"] = fixture.Postgres.StandbyConnectionString,
                ["OrleansLsn:Reads:MaxWait"] = "00:00:30",
            });
            builder.Services.AddSingleton<IClusterClient>(fixture.Client);
        });
        await TodoApp.StartAsync(_app, Ct);
        _base = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _context = await browser.NewContextAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await ReplicaControl.ResumeReplayAsync(fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        if (_context is not null)
        {
            await _context.DisposeAsync();
        }

        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        await SharedReplayViews.RetireAsync(fixture.Client, LsnTestCluster.UsEast);
    }

    [Fact]
    public async Task TheFormSubmittedWhileReplayLags_ThePageWaitsForTheReplica_AndWithoutTheCookieReadsAtOnce()
    {
        IPage page = await _context!.NewPageAsync();
        await page.GotoAsync(_base + "/");
        await Expect(page).ToHaveURLAsync(ListUrl(), Slow);
        await Expect(page.Locator("#read")).ToHaveAttributeAsync("data-outcome", "no_token", SlowAttribute);
        string list = page.Url;

        ReplayView view = ReplayViews.For(fixture.Client).Get(LsnTestCluster.UsEast);
        await ReplicaControl.PauseReplayAsync(fixture.Postgres.Standby2ConnectionString, Ct);
        string item = "milk " + Guid.NewGuid().ToString("N")[..8];
        await page.GetByLabel("New item").FillAsync(item);
        // Playwright's click returns once the navigation it started has finished: here, only after replay resumes.
        Task click = page.GetByRole(AriaRole.Button, new() { Name = "Add" }).ClickAsync();

        // The list after the redirect is held by the read decision until us-east replays the write.
        await Wait.UntilAsync(() => Task.FromResult(view.PendingWaits > 0 || click.IsCompleted), TimeSpan.FromSeconds(20), () => "the list page waiting in us-east's view", Ct);
        Assert.False(click.IsCompleted, "the page after the write did not wait for the replica");
        await ReplicaControl.ResumeReplayAsync(fixture.Postgres.Standby2ConnectionString, Ct);
        await click;
        await Expect(page.Locator("#items")).ToContainTextAsync(item, SlowText);
        await Expect(page.Locator("#read")).ToHaveAttributeAsync("data-outcome", "replayed_after_wait", SlowAttribute);
        await Expect(page.Locator("#read")).ToContainTextAsync(AfterAWait());
        Assert.Equal(list, page.Url);
        Assert.Contains(await _context.CookiesAsync(), c => c.Name == "orleanslsn-rw" && c.HttpOnly);

        // Without the cookie: no token, the replica at once, and it has the item by now.
        await _context.ClearCookiesAsync();
        await page.ReloadAsync();
        await Expect(page.Locator("#read")).ToHaveAttributeAsync("data-outcome", "no_token", SlowAttribute);
        await Expect(page.Locator("#read")).ToContainTextAsync("at once: this request carried no token");
        await Expect(page.Locator("#items")).ToContainTextAsync(item);
    }

    [Fact]
    public async Task BadInput_GetsAClearErrorPage_AndWritesNothing()
    {
        using var handler = new HttpClientHandler { CookieContainer = new System.Net.CookieContainer(), AllowAutoRedirect = false };
        using var http = new HttpClient(handler) { BaseAddress = new Uri(_base) };
        string list = "bad-input-" + Guid.NewGuid().ToString("N")[..8];
        string page = await http.GetStringAsync($"/lists/{list}", Ct);
        const string Field = "name=\"__RequestVerificationToken\" value=\"";
        int start = page.IndexOf(Field, StringComparison.Ordinal) + Field.Length;
        string token = page[start..page.IndexOf('"', start)];

        foreach ((string text, string expected) in new[] { ("   ", "An item needs some text."), (new string('x', TodoApp.MaxText + 1), $"An item is at most {TodoApp.MaxText} characters.") })
        {
            using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["text"] = text, ["__RequestVerificationToken"] = token });
            using HttpResponseMessage refused = await http.PostAsync($"/lists/{list}/items", form, Ct);
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains(expected, await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        using (var forged = new FormUrlEncodedContent(new Dictionary<string, string> { ["text"] = "no antiforgery token" }))
        using (HttpResponseMessage refused = await http.PostAsync($"/lists/{list}/items", forged, Ct))
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, refused.StatusCode);
        }

        using (HttpResponseMessage badList = await http.GetAsync("/lists/NOT!a-list", Ct))
        {
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, badList.StatusCode);
            Assert.Contains("A list id is 1 to 40 characters", await badList.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        // Nothing was written: the list, read from the primary's own table, is empty.
        await using var primary = new Npgsql.NpgsqlConnection(fixture.Postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        await using var count = new Npgsql.NpgsqlCommand($"select count(*) from {TodoDb.Table} where list = @list", primary);
        count.Parameters.AddWithValue("list", list);
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync(Ct))!);
    }

    [GeneratedRegex("/lists/[0-9a-f]{16}$")]
    private static partial Regex ListUrl();

    [GeneratedRegex(@"Read from the replica of us-east after waiting \d+ ms for it to replay your last change \([0-9A-F]+/[0-9A-F]+\)")]
    private static partial Regex AfterAWait();
}
