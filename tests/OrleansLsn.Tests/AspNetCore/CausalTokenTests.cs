using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using OrleansLsn.AspNetCore;
using OrleansLsn.Client;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.AspNetCore;

/// <summary>
/// The causal token through a real Kestrel server over TCP, with writes committed on the real primary: a response whose
/// request wrote carries the token (header and cookie) and one that did not carries none; the next request reads it back
/// from the header or the cookie; a changed token, one of another key ring or garbage is ignored with one warning each
/// and the request treated as carrying none; the token travels with the grain calls made while handling the request, and
/// to background work in its protected form.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CausalTokenTests(ClusterFixture fixture) : IAsyncLifetime
{
    private const string Header = "X-OrleansLsn-Token";

    private readonly ConcurrentQueue<string> _warnings = new();
    private WebApplication? _app;
    private Uri _base = null!;
    private string _table = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _table = "ct_" + Guid.NewGuid().ToString("N")[..12];
        await using (var primary = new NpgsqlConnection(fixture.Postgres.PrimaryConnectionString))
        {
            await primary.OpenAsync();
            await using var create = new NpgsqlCommand($"create table {_table} (id int)", primary);
            await create.ExecuteNonQueryAsync();
        }

        _app = await StartAsync(null);
        _base = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    [Fact]
    public async Task AWrite_SetsTheToken_AndTheNextRequestCarriesItBack_InTheHeader()
    {
        using var http = new HttpClient { BaseAddress = _base };
        using HttpResponseMessage read = await http.GetAsync("/token", Ct);
        Assert.Equal("none", await read.Content.ReadAsStringAsync(Ct));
        Assert.False(read.Headers.Contains(Header), "a request that wrote nothing got a token");
        Assert.False(read.Headers.Contains("Set-Cookie"), "a request that wrote nothing got a cookie");

        using HttpResponseMessage write = await http.PostAsync("/write", null, Ct);
        string written = await write.Content.ReadAsStringAsync(Ct);
        string token = Assert.Single(write.Headers.GetValues(Header));
        Assert.Contains(write.Headers.GetValues("Set-Cookie"), c => c.StartsWith("orleanslsn-rw=", StringComparison.Ordinal) && c.Contains("httponly", StringComparison.OrdinalIgnoreCase) && c.Contains("samesite=lax", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(written.Split(' ')[0], token, StringComparison.Ordinal);

        using var next = new HttpRequestMessage(HttpMethod.Get, "/token");
        next.Headers.Add(Header, token);
        using HttpResponseMessage carried = await http.SendAsync(next, Ct);
        Assert.Equal(written, await carried.Content.ReadAsStringAsync(Ct));
        Assert.Empty(_warnings);
    }

    [Fact]
    public async Task TheMetrics_CountTokensByOutcome_AndTheResponsesThatSetOne()
    {
        var counts = new ConcurrentDictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "OrleansLsn.AspNetCore")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string key = instrument.Name + string.Concat(tags.ToArray().Select(t => $";{t.Key}={t.Value}"));
            counts.AddOrUpdate(key, value, (_, v) => v + value);
        });
        listener.Start();

        using var http = new HttpClient { BaseAddress = _base };
        using HttpResponseMessage write = await http.PostAsync("/write", null, Ct);
        string token = Assert.Single(write.Headers.GetValues(Header));
        using (var good = new HttpRequestMessage(HttpMethod.Get, "/token"))
        {
            good.Headers.Add(Header, token);
            (await http.SendAsync(good, Ct)).Dispose();
        }

        using (var bad = new HttpRequestMessage(HttpMethod.Get, "/token"))
        {
            bad.Headers.Add(Header, "garbage");
            (await http.SendAsync(bad, Ct)).Dispose();
        }

        // Other tests of the collection run one after another, so these counts are this test's.
        Assert.Equal(1, counts.GetValueOrDefault("orleanslsn.web.tokens;outcome=absent"));
        Assert.Equal(1, counts.GetValueOrDefault("orleanslsn.web.tokens;outcome=verified;source=header"));
        Assert.Equal(1, counts.GetValueOrDefault("orleanslsn.web.tokens;outcome=ignored;source=header"));
        Assert.Equal(1, counts.GetValueOrDefault("orleanslsn.web.tokens.set"));
    }

    [Fact]
    public async Task TheCookie_CarriesTheToken_ForABrowser_AndASecondWriteMovesItOn()
    {
        using var handler = new HttpClientHandler { CookieContainer = new CookieContainer() };
        using var http = new HttpClient(handler) { BaseAddress = _base };
        using HttpResponseMessage first = await http.PostAsync("/write", null, Ct);
        string firstWrite = await first.Content.ReadAsStringAsync(Ct);
        Assert.Equal(firstWrite, await http.GetStringAsync("/token", Ct));

        using HttpResponseMessage second = await http.PostAsync("/write", null, Ct);
        string secondWrite = await second.Content.ReadAsStringAsync(Ct);
        Assert.True(Lsn.Parse(secondWrite.Split(' ')[0]) > Lsn.Parse(firstWrite.Split(' ')[0]), $"{secondWrite} is not after {firstWrite}");
        Assert.Equal(secondWrite, await http.GetStringAsync("/token", Ct));
    }

    [Theory]
    [InlineData("changed")]
    [InlineData("other key ring")]
    [InlineData("garbage")]
    [InlineData("too long")]
    public async Task AnInvalidToken_IsIgnoredWithOneWarning_AndTheRequestCarriesNone(string kind)
    {
        using var http = new HttpClient { BaseAddress = _base };
        using HttpResponseMessage write = await http.PostAsync("/write", null, Ct);
        string token = Assert.Single(write.Headers.GetValues(Header));
        string bad = kind switch
        {
            "changed" => token[..^6] + (token[^6] == 'A' ? 'B' : 'A') + token[^5..],
            "other key ring" => await OtherKeyRingTokenAsync(),
            "garbage" => "not a token!",
            _ => new string('A', 10_000),
        };

        using var request = new HttpRequestMessage(HttpMethod.Get, "/token");
        request.Headers.TryAddWithoutValidation(Header, bad);
        using HttpResponseMessage response = await http.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("none; ignored: the header X-OrleansLsn-Token: ", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        string warning = Assert.Single(_warnings);
        Assert.Contains("Causal token ignored", warning, StringComparison.Ordinal);
        Assert.DoesNotContain(bad.Length > 40 ? bad[..40] : bad, warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheToken_TravelsWithTheGrainCallsOfTheRequest_AndOnlyThose()
    {
        using var http = new HttpClient { BaseAddress = _base };
        Assert.Equal("none", await http.GetStringAsync("/grain", Ct));
        using HttpResponseMessage write = await http.PostAsync("/write", null, Ct);
        string[] written = (await write.Content.ReadAsStringAsync(Ct)).Split(' ');
        using var request = new HttpRequestMessage(HttpMethod.Get, "/grain");
        request.Headers.Add(Header, Assert.Single(write.Headers.GetValues(Header)));
        using HttpResponseMessage response = await http.SendAsync(request, Ct);
        Assert.Equal($"{written[0]}:{written[1]}:{written[2]}", await response.Content.ReadAsStringAsync(Ct));
        // Nothing is left behind in this flow.
        Assert.Equal("none", await fixture.Client.GetGrain<ICausalTokenEchoGrain>("test").Echo());
    }

    [Fact]
    public async Task ProtectedForBackgroundWork_ItIsRestoredThere_AndReachesItsGrainCalls()
    {
        var token = new CausalToken(Lsn.Parse("16/B374D848"), new PrimaryIdentity(7290912461587265371, 3));
        CausalTokenProtector protector = _app!.Services.GetRequiredService<CausalTokenProtector>();
        string message = protector.Protect(token);

        // The background side: a message taken from a queue.
        Assert.Equal(token, protector.Unprotect(message, out string? problem));
        Assert.Null(problem);
        using (CausalTokenContext.Use(protector.Unprotect(message, out _)))
        {
            Assert.Equal(token.Format(), await fixture.Client.GetGrain<ICausalTokenEchoGrain>("background").Echo());
        }

        Assert.Equal("none", await fixture.Client.GetGrain<ICausalTokenEchoGrain>("background").Echo());
        Assert.Null(protector.Unprotect(message[..^2] + (message[^2] == 'A' ? "B" : "A") + message[^1..], out problem));
        Assert.NotNull(problem);
    }

    [Theory]
    [InlineData("")]
    [InlineData("16/B374D848")]
    [InlineData("16/B374D848:1")]
    [InlineData("0/0:1:1")]
    [InlineData("16/B374D848:1:0")]
    [InlineData("16/B374D848:-1:1")]
    [InlineData("16/B374D848:1:1:1")]
    [InlineData("x:1:1")]
    public void TheRequestContextForm_RefusesWhatItDidNotWrite(string text) =>
        Assert.False(CausalToken.TryParse(text, out _));

    [Fact]
    public void TheRequestContextForm_RoundTrips()
    {
        var token = new CausalToken(Lsn.Parse("FFFFFFFF/FFFFFFFF"), new PrimaryIdentity(ulong.MaxValue, uint.MaxValue));
        Assert.True(CausalToken.TryParse(token.Format(), out CausalToken read));
        Assert.Equal(token, read);
    }

    [Fact]
    public void Merge_KeepsTheLaterToken_AndANewPrimaryWins()
    {
        var a = new PrimaryIdentity(7, 1);
        var held = new CausalToken(new Lsn(100), a);
        Assert.Equal(held, CausalToken.Merge(held, new CausalToken(new Lsn(50), a)));
        Assert.Equal(new Lsn(150), CausalToken.Merge(held, new CausalToken(new Lsn(150), a)).Lsn);
        // A later timeline of the same primary wins even at a lower LSN; an earlier one never does.
        var promoted = new CausalToken(new Lsn(10), a with { Timeline = 2 });
        Assert.Equal(promoted, CausalToken.Merge(held, promoted));
        Assert.Equal(promoted, CausalToken.Merge(promoted, new CausalToken(new Lsn(900), a)));
        // Another database cluster: the newer token replaces the old one whatever its numbers.
        var other = new CausalToken(new Lsn(1), new PrimaryIdentity(8, 1));
        Assert.Equal(other, CausalToken.Merge(held, other));
        Assert.Equal(held, CausalToken.Merge(null, held));
    }

    private async Task<WebApplication> StartAsync(string? applicationName)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new WarningCollector(_warnings, 5200));
        builder.Services.AddLsnWriteRecorder();
        builder.Services.AddCausalTokens();
        if (applicationName is not null)
        {
            builder.Services.AddDataProtection().SetApplicationName(applicationName);
        }

        WebApplication app = builder.Build();
        app.UseCausalTokens();
        app.MapPost("/write", async (HttpContext context, LsnWriteRecorder recorder) =>
        {
            await using var primary = new NpgsqlConnection(fixture.Postgres.PrimaryConnectionString);
            await primary.OpenAsync();
            await using NpgsqlTransaction transaction = await primary.BeginTransactionAsync();
            await using (var insert = new NpgsqlCommand($"insert into {_table} values (1)", primary))
            {
                await insert.ExecuteNonQueryAsync();
            }

            CommittedWrite write = (await PrimaryLsn.CommitAsync(transaction))!.Value;
            recorder.Record(write);
            return Results.Text($"{write.Lsn} {write.Primary.SystemIdentifier} {write.Primary.Timeline}");
        });
        app.MapGet("/grain", () => fixture.Client.GetGrain<ICausalTokenEchoGrain>("web").Echo());
        app.MapGet("/token", (HttpContext context) =>
        {
            CausalTokenFeature feature = context.GetCausalToken()!;
            return feature.Incoming is { } token
                ? Results.Text($"{token.Lsn} {token.Primary.SystemIdentifier} {token.Primary.Timeline}")
                : Results.Text(feature.Rejected is null ? "none" : $"none; ignored: {feature.Rejected}");
        });
        await app.StartAsync(Ct);
        return app;
    }

    /// <summary>A valid token of another application (another Data Protection key ring) for the same write.</summary>
    private async Task<string> OtherKeyRingTokenAsync()
    {
        await using WebApplication other = await StartAsync("another-application");
        var otherBase = new Uri(other.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        using var http = new HttpClient { BaseAddress = otherBase };
        using HttpResponseMessage write = await http.PostAsync("/write", null, Ct);
        return Assert.Single(write.Headers.GetValues(Header));
    }
}
