using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Npgsql;
using OrleansLsn.AspNetCore;
using OrleansLsn.Client;
using OrleansLsn.Tests.Infrastructure;
using Xunit;
using static Microsoft.Playwright.Assertions;

namespace OrleansLsn.Tests.AspNetCore;

/// <summary>
/// The causal token in a real browser (headless Chromium, <see cref="BrowserFixture"/>) against a real Kestrel server
/// with the causal token middleware: a form posted by the browser writes a row on the real primary, the 303 that
/// answers it sets the cookie, and the page the browser is sent to renders the token the request carried. The cookie is
/// HTTP-only (not in <c>document.cookie</c>), and without it the page says no token.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed partial class CausalTokenBrowserTests(BrowserFixture browser, PostgresFixture postgres) : IAsyncLifetime
{
    private const string CookieName = "orleanslsn-rw";

    private WebApplication? _app;
    private IBrowserContext? _context;
    private string _base = "";
    private string _table = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _table = "browser_" + Guid.NewGuid().ToString("N")[..12];
        await ExecuteAsync($"create table {_table} (id serial primary key, note text not null)");
        _app = await StartAsync();
        _base = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _context = await browser.NewContextAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_context is not null)
        {
            await _context.DisposeAsync();
        }

        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        await ExecuteAsync($"drop table if exists {_table}");
    }

    [Fact]
    public async Task SubmittingTheForm_WritesOnThePrimary_AndTheNextPageShowsTheTokenFromAnHttpOnlyCookie()
    {
        IPage page = await _context!.NewPageAsync();
        await page.GotoAsync(_base + "/token");
        await Expect(page.Locator("#token")).ToHaveTextAsync("no token");

        await page.GotoAsync(_base + "/");
        string note = Guid.NewGuid().ToString("N");
        await page.GetByLabel("Note").FillAsync(note);
        Lsn before = await CurrentInsertLsnAsync();
        IResponse posted = await page.RunAndWaitForResponseAsync(
            () => page.GetByRole(AriaRole.Button, new() { Name = "Write" }).ClickAsync(),
            response => response.Request.Method == "POST" && response.Url == _base + "/write");
        Assert.Equal((int)HttpStatusCode.SeeOther, posted.Status);
        await page.WaitForURLAsync(_base + "/token");
        await Expect(page.Locator("#token")).ToHaveTextAsync(TokenText());

        // The page's LSN against the row's commit record in the primary's WAL, found from the row itself.
        Lsn shown = Lsn.Parse(TokenText().Match(await page.Locator("#token").InnerTextAsync()).Groups[1].Value);
        Lsn committed = await CommitRecordEndAsync(note, before);
        Assert.True(shown >= committed, $"the page shows the token at {shown}, before the end of the row's commit record at {committed}");
        Assert.True(shown <= await CurrentInsertLsnAsync(), $"the page shows the token at {shown}, past the primary's insert position");

        BrowserContextCookiesResult cookie = Assert.Single(await _context.CookiesAsync(), c => c.Name == CookieName);
        Assert.True(cookie.HttpOnly, "the token cookie is readable by scripts");
        // The page's script set a cookie of its own: document.cookie works, and shows that one only.
        string scriptCookies = await page.EvaluateAsync<string>("() => document.cookie");
        Assert.Contains("script-visible=yes", scriptCookies, StringComparison.Ordinal);
        Assert.DoesNotContain(CookieName, scriptCookies, StringComparison.Ordinal);

        await _context.ClearCookiesAsync();
        await page.ReloadAsync();
        await Expect(page.Locator("#token")).ToHaveTextAsync("no token");
    }

    [GeneratedRegex(@"^Incoming token LSN ([0-9A-F]+/[0-9A-F]+)$")]
    private static partial Regex TokenText();

    private async Task<WebApplication> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddLsnWriteRecorder();
        builder.Services.AddCausalTokens();
        WebApplication app = builder.Build();
        app.UseCausalTokens();
        app.MapGet("/", () => Html(
            """
            <form method="post" action="/write">
              <label for="note">Note</label> <input id="note" name="note" required>
              <button type="submit">Write</button>
            </form>
            """));
        app.MapPost("/write", async (HttpContext context, LsnWriteRecorder recorder) =>
        {
            IFormCollection form = await context.Request.ReadFormAsync(context.RequestAborted);
            await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
            await primary.OpenAsync(context.RequestAborted);
            await using NpgsqlTransaction transaction = await primary.BeginTransactionAsync(context.RequestAborted);
            await using (var insert = new NpgsqlCommand($"insert into {_table} (note) values (@note)", primary))
            {
                insert.Parameters.AddWithValue("note", form["note"].ToString());
                await insert.ExecuteNonQueryAsync(context.RequestAborted);
            }

            recorder.Record((await PrimaryLsn.CommitAsync(transaction, context.RequestAborted))!.Value);
            context.Response.Headers.Location = "/token";
            return Results.StatusCode(StatusCodes.Status303SeeOther);
        });
        app.MapGet("/token", (HttpContext context) =>
        {
            CausalToken? token = context.GetCausalToken()!.Incoming;
            string text = token is { } t ? $"Incoming token LSN {t.Lsn}" : "no token";
            return Html($"""<p id="token">{text}</p><script>document.cookie = "script-visible=yes; path=/";</script>""");
        });
        await app.StartAsync(Ct);
        return app;
    }

    private static IResult Html(string body) =>
        Results.Content($"<!doctype html><html><head><title>OrleansLsn</title></head><body>{body}</body></html>", "text/html; charset=utf-8");

    private async Task<Lsn> CurrentInsertLsnAsync()
    {
        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("select pg_current_wal_insert_lsn()::text", primary);
        return Lsn.Parse((string)(await command.ExecuteScalarAsync(Ct))!);
    }

    /// <summary>
    /// The end of the commit record of the transaction that wrote the row with <paramref name="note"/> (its
    /// <c>xmin</c>), read from the primary's WAL after <paramref name="after"/> with pg_walinspect.
    /// </summary>
    private async Task<Lsn> CommitRecordEndAsync(string note, Lsn after)
    {
        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        await using (var extension = new NpgsqlCommand("create extension if not exists pg_walinspect", primary))
        {
            await extension.ExecuteNonQueryAsync(Ct);
        }

        await using var command = new NpgsqlCommand(
            $"""
            select w.end_lsn::text
            from {_table} r, pg_get_wal_records_info(@after::pg_lsn, pg_current_wal_insert_lsn()) w
            where r.note = @note and w.xid::text = r.xmin::text and w.resource_manager = 'Transaction' and w.record_type = 'COMMIT'
            """,
            primary);
        command.Parameters.AddWithValue("after", after.ToString());
        command.Parameters.AddWithValue("note", note);
        var ends = new List<string>();
        await using (NpgsqlDataReader reader = await command.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                ends.Add(reader.GetString(0));
            }
        }

        return Lsn.Parse(Assert.Single(ends));
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, primary);
        await command.ExecuteNonQueryAsync(Ct);
    }
}
