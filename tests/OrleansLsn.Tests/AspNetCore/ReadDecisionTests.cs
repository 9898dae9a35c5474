using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansLsn.AspNetCore;
using OrleansLsn.Client;
using OrleansLsn.EntityFrameworkCore;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.AspNetCore;

/// <summary>
/// Each request's read decision through a real Kestrel server, with EF Core writing on the real primary and reading
/// through the read context from the real replica of us-east (whose replay the tests pause): a request without a token
/// reads the replica at once; a token the replica has reads it at once; one it lacks waits, then reads the primary,
/// the replica marked stale or gets a 503, as the endpoint says; a token of another database, of a timeline the primary
/// is not on or past the primary's position is refused with one warning. A region or replica missing from the
/// configuration stops the start, naming the key.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReadDecisionTests(ClusterFixture fixture) : IAsyncLifetime
{
    private const string Header = "X-OrleansLsn-Token";
    private const string Debug = "X-OrleansLsn-Read";

    private readonly ConcurrentQueue<string> _warnings = new();
    private WebApplication? _app;
    private Uri _base = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await using (var primary = new NpgsqlConnection(fixture.Postgres.PrimaryConnectionString))
        {
            await primary.OpenAsync(Ct);
            await using var create = new NpgsqlCommand("create table if not exists rd_items (id serial primary key, text text not null)", primary);
            await create.ExecuteNonQueryAsync(Ct);
        }

        _app = await StartAsync(LsnTestCluster.UsEast, useReplayView: true);
        _base = BaseOf(_app);
    }

    public async ValueTask DisposeAsync()
    {
        await ReplicaControl.ResumeReplayAsync(fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        await SharedReplayViews.RetireAsync(fixture.Client, LsnTestCluster.UsEast);
    }

    [Fact]
    public async Task WithoutAToken_TheReplicaReadsAtOnce()
    {
        using var http = new HttpClient { BaseAddress = _base };
        using HttpResponseMessage response = await http.GetAsync("/read/0", Ct);
        Assert.Equal("missing replica no_token", await response.Content.ReadAsStringAsync(Ct));
        string debug = Assert.Single(response.Headers.GetValues(Debug));
        Assert.StartsWith("no_token; region=us-east; waited-ms=0;", debug, StringComparison.Ordinal);
        Assert.Empty(_warnings);
    }

    [Fact]
    public async Task AWriteTheReplicaHas_ReadsTheReplica_AndTheReadContextSeesTheRow()
    {
        using var http = new HttpClient { BaseAddress = _base };
        (int id, string token) = await WriteAsync(http);
        using HttpResponseMessage response = await GetAsync(http, $"/read/{id}", token);
        string body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(body is "found replica replayed" or "found replica replayed_after_wait", body);
        Assert.Empty(_warnings);
    }

    [Fact]
    public async Task WhileReplayIsPaused_EachEndpointAppliesItsPolicy_ThenAfterResumeTheReplicaReads()
    {
        using var http = new HttpClient { BaseAddress = _base };
        await PauseAsync();
        (int id, string token) = await WriteAsync(http);

        // Default bound (300 ms, then the primary): the row, from the primary.
        var sw = Stopwatch.StartNew();
        using (HttpResponseMessage read = await GetAsync(http, $"/read/{id}", token))
        {
            Assert.Equal("found primary primary", await read.Content.ReadAsStringAsync(Ct));
            Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(300), $"answered after {sw.Elapsed.TotalMilliseconds} ms, before the bound");
            Assert.Contains("had not replayed the token's write within 300 ms", Assert.Single(read.Headers.GetValues(Debug)), StringComparison.Ordinal);
            Assert.False(read.Headers.Contains("X-OrleansLsn-Stale"));
        }

        // Stale: the replica without the row, said in a header.
        using (HttpResponseMessage stale = await GetAsync(http, $"/stale/{id}", token))
        {
            Assert.Equal("missing replica stale", await stale.Content.ReadAsStringAsync(Ct));
            string said = Assert.Single(stale.Headers.GetValues("X-OrleansLsn-Stale"));
            Assert.StartsWith("replica=us-east; token=", said, StringComparison.Ordinal);
        }

        // Unavailable: 503 with Retry-After, before the endpoint runs.
        using (HttpResponseMessage unavailable = await GetAsync(http, $"/unavailable/{id}", token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, unavailable.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(2), unavailable.Headers.RetryAfter?.Delta);
            Assert.DoesNotContain("endpoint ran", await unavailable.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        // A long bound: the read waits, and replay resumed meanwhile serves it from the replica.
        ReplayView view = ReplayViews.For(fixture.Client).Get(LsnTestCluster.UsEast);
        Task<HttpResponseMessage> waiting = GetAsync(http, $"/patient/{id}", token);
        await Wait.UntilAsync(() => Task.FromResult(view.PendingWaits > 0 || waiting.IsCompleted), TimeSpan.FromSeconds(20), () => "the request waiting in the view", Ct);
        Assert.False(waiting.IsCompleted, "the patient read did not wait");
        await ReplicaControl.ResumeReplayAsync(fixture.Postgres.Standby2ConnectionString, Ct);
        using HttpResponseMessage patient = await waiting;
        Assert.Equal("found replica replayed_after_wait", await patient.Content.ReadAsStringAsync(Ct));
        Assert.Empty(_warnings);
    }

    [Fact]
    public async Task AReadWithoutReplayViews_AsksTheTrackerGrain()
    {
        await using WebApplication app = await StartAsync(LsnTestCluster.UsEast, useReplayView: false);
        using var http = new HttpClient { BaseAddress = BaseOf(app) };
        await PauseAsync();
        (int id, string token) = await WriteAsync(http);
        using (HttpResponseMessage read = await GetAsync(http, $"/read/{id}", token))
        {
            Assert.Equal("found primary primary", await read.Content.ReadAsStringAsync(Ct));
        }

        await ReplicaControl.ResumeReplayAsync(fixture.Postgres.Standby2ConnectionString, Ct);
        using HttpResponseMessage patient = await GetAsync(http, $"/patient/{id}", token);
        string body = await patient.Content.ReadAsStringAsync(Ct);
        Assert.True(body is "found replica replayed_after_wait", body);
    }

    [Fact]
    public async Task AForeignToken_IsIgnoredWithOneWarning_ReadsTheReplica_AndTheCookieIsCleared()
    {
        using var http = new HttpClient { BaseAddress = _base };
        CausalToken real = await CurrentPositionAsync();
        string foreign = Protect(real with { Primary = real.Primary with { SystemIdentifier = real.Primary.SystemIdentifier + 1 } });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/read/0");
        request.Headers.Add("Cookie", "orleanslsn-rw=" + foreign);
        using HttpResponseMessage response = await http.SendAsync(request, Ct);
        Assert.Equal("missing replica no_token", await response.Content.ReadAsStringAsync(Ct));
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("orleanslsn-rw=;", StringComparison.Ordinal) && c.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase));
        string warning = Assert.Single(_warnings);
        Assert.Contains("Foreign", warning, StringComparison.Ordinal);
        Assert.Contains("another database cluster", warning, StringComparison.Ordinal);

        // The same token in the header (an API client's): ignored the same way, and the cookie is left alone.
        using HttpResponseMessage fromHeader = await GetAsync(http, "/read/0", foreign);
        Assert.Equal("missing replica no_token", await fromHeader.Content.ReadAsStringAsync(Ct));
        Assert.False(fromHeader.Headers.Contains("Set-Cookie"), "a token refused in the header cleared the cookie");
        Assert.Equal(2, _warnings.Count);
    }

    [Theory]
    [InlineData("beyond")]
    [InlineData("later timeline")]
    public async Task ATokenThePrimaryCannotHaveWritten_IsRefused_ReadsThePrimary_AndIsReplaced(string kind)
    {
        using var http = new HttpClient { BaseAddress = _base };
        CausalToken real = await CurrentPositionAsync();
        CausalToken bad = kind == "beyond"
            ? real with { Lsn = new Lsn(real.Lsn.Value + (1UL << 34)) }
            : real with { Primary = real.Primary with { Timeline = real.Primary.Timeline + 1 } };
        var sw = Stopwatch.StartNew();
        using HttpResponseMessage response = await GetAsync(http, "/patient/0", Protect(bad));
        Assert.Equal("missing primary primary", await response.Content.ReadAsStringAsync(Ct));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"a refused token waited {sw.Elapsed} on a 10 s bound");
        string warning = Assert.Single(_warnings);
        Assert.Contains(kind == "beyond" ? "BeyondPrimary" : "UnknownTimeline", warning, StringComparison.Ordinal);

        // The response carries the primary's position instead, which the primary does have.
        CausalToken replacement = Unprotect(Assert.Single(response.Headers.GetValues(Header)));
        Assert.Equal(real.Primary, replacement.Primary);
        Assert.True(replacement.Lsn >= real.Lsn && replacement.Lsn <= (await CurrentPositionAsync()).Lsn, $"{replacement} is not a position of the primary");
    }

    [Fact]
    public async Task AnEndpointWithoutReadDecision_DoesNotWait_AndItsReadDecisionIsRefused()
    {
        using var http = new HttpClient { BaseAddress = _base };
        await PauseAsync();
        (_, string token) = await WriteAsync(http);
        var sw = Stopwatch.StartNew();
        using HttpResponseMessage response = await GetAsync(http, "/undecided", token);
        Assert.Equal("no decision", await response.Content.ReadAsStringAsync(Ct));
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(300), $"waited {sw.Elapsed.TotalMilliseconds} ms");
        Assert.False(response.Headers.Contains(Debug));
    }

    [Fact]
    public async Task TheMetrics_CountDecisionsByOutcomeAndRoute()
    {
        var counts = new ConcurrentDictionary<string, long>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "OrleansLsn.AspNetCore" && instrument.Name.StartsWith("orleanslsn.web.read", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => counts.AddOrUpdate(Key(instrument.Name, tags), value, (_, v) => v + value));
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => counts.AddOrUpdate(Key(instrument.Name, tags), 1, (_, v) => v + 1));
        listener.Start();

        using var http = new HttpClient { BaseAddress = _base };
        (await http.GetAsync("/read/0", Ct)).Dispose();
        await PauseAsync();
        (int id, string token) = await WriteAsync(http);
        (await GetAsync(http, $"/stale/{id}", token)).Dispose();

        Assert.Equal(1, counts.GetValueOrDefault("orleanslsn.web.reads;orleanslsn.read.outcome=no_token;http.route=/read/{id:int}"));
        Assert.Equal(1, counts.GetValueOrDefault("orleanslsn.web.reads;orleanslsn.read.outcome=stale;http.route=/stale/{id:int}"));
        Assert.Equal(1, counts.GetValueOrDefault("orleanslsn.web.read.wait;orleanslsn.read.outcome=stale;http.route=/stale/{id:int}"));
        Assert.Equal(0, counts.GetValueOrDefault("orleanslsn.web.reads;orleanslsn.read.outcome=no_token;http.route=/write"));

        static string Key(string name, ReadOnlySpan<KeyValuePair<string, object?>> tags) => name + string.Concat(tags.ToArray().Select(t => $";{t.Key}={t.Value}"));
    }

    [Theory]
    [InlineData(null, "OrleansLsn:Reads:Region is not set")]
    [InlineData("ap-north", "OrleansLsn:Reads:Replicas:ap-north is not set")]
    public async Task AMissingRegionOrReplica_StopsTheStart_NamingTheKey(string? region, string expected)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () => await StartAsync(region, useReplayView: true));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Password", error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ConnectionStringsFromFiles_AreRead_AndAMissingFileIsNamedByKeyAndPath()
    {
        string folder = Directory.CreateTempSubdirectory("orleanslsn-reads-").FullName;
        try
        {
            string primary = Path.Combine(folder, "primary.connection");
            string replica = Path.Combine(folder, "replica.connection");
            await File.WriteAllTextAsync(primary, fixture.Postgres.PrimaryConnectionString + "\n", Ct);
            await File.WriteAllTextAsync(replica, fixture.Postgres.Standby2ConnectionString, Ct);
            await using (WebApplication app = await StartAsync(LsnTestCluster.UsEast, useReplayView: true, new()
            {
                ["OrleansLsn:Reads:Primary"] = null,
                ["OrleansLsn:Reads:PrimaryFile"] = primary,
                ["OrleansLsn:Reads:Replicas:us-east"] = null,
                ["OrleansLsn:Reads:ReplicaFiles:us-east"] = replica,
            }))
            {
                using var http = new HttpClient { BaseAddress = BaseOf(app) };
                (int id, string token) = await WriteAsync(http);
                using HttpResponseMessage read = await GetAsync(http, $"/patient/{id}", token);
                string body = await read.Content.ReadAsStringAsync(Ct);
                Assert.True(body is "found replica replayed" or "found replica replayed_after_wait", body);
            }

            string missing = Path.Combine(folder, "nothing-here");
            var error = await Assert.ThrowsAsync<OptionsValidationException>(async () => await StartAsync(LsnTestCluster.UsEast, useReplayView: true, new()
            {
                ["OrleansLsn:Reads:Primary"] = null,
                ["OrleansLsn:Reads:PrimaryFile"] = missing,
            }));
            Assert.Contains($"OrleansLsn:Reads:PrimaryFile: file '{missing}' does not exist", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Uri BaseOf(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    private Task PauseAsync() => ReplicaControl.PauseReplayAsync(fixture.Postgres.Standby2ConnectionString, Ct);

    private async Task<(int Id, string Token)> WriteAsync(HttpClient http)
    {
        using HttpResponseMessage write = await http.PostAsync("/write", null, Ct);
        write.EnsureSuccessStatusCode();
        return (int.Parse(await write.Content.ReadAsStringAsync(Ct), System.Globalization.CultureInfo.InvariantCulture), Assert.Single(write.Headers.GetValues(Header)));
    }

    private static Task<HttpResponseMessage> GetAsync(HttpClient http, string path, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(Header, token);
        return http.SendAsync(request, Ct);
    }

    private async Task<CausalToken> CurrentPositionAsync()
    {
        await using var primary = new NpgsqlConnection(fixture.Postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        return CausalToken.From(await PrimaryLsn.GetCommittedWriteAsync(primary, Ct));
    }

    private string Protect(CausalToken token) => _app!.Services.GetRequiredService<CausalTokenProtector>().Protect(token);

    private CausalToken Unprotect(string text) => _app!.Services.GetRequiredService<CausalTokenProtector>().Unprotect(text, out _)!.Value;

    private async Task<WebApplication> StartAsync(string? region, bool useReplayView, Dictionary<string, string?>? overrides = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new WarningCollector(_warnings, 5200, 5201));
        var settings = new Dictionary<string, string?>
        {
            ["OrleansLsn:Reads:Primary"] = fixture.Postgres.PrimaryConnectionString,
            ["OrleansLsn:Reads:Replicas:us-east"] = fixture.Postgres.Standby2ConnectionString,
            ["OrleansLsn:Reads:Replicas:eu-west"] = fixture.Postgres.StandbyConnectionString,
            ["OrleansLsn:Reads:MaxWait"] = "00:00:00.300",
            ["OrleansLsn:Reads:UseReplayView"] = useReplayView ? "true" : "false",
            ["OrleansLsn:Reads:DebugHeader"] = "true",
            ["OrleansLsn:Reads:RetryAfter"] = "00:00:02",
        };
        if (region is not null)
        {
            settings["OrleansLsn:Reads:Region"] = region;
        }

        foreach ((string key, string? value) in overrides ?? [])
        {
            if (value is null)
            {
                settings.Remove(key);
            }
            else
            {
                settings[key] = value;
            }
        }

        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddSingleton<IClusterClient>(fixture.Client);
        builder.Services.AddReadYourWrites(builder.Configuration);
        builder.Services.AddDbContext<ItemsDb>((sp, o) => o.UseNpgsql(sp.GetRequiredService<ReadRouter>().Primary).UseLsnCapture(sp));
        builder.Services.AddReadDbContext<ItemsDb>((o, source) => o.UseNpgsql(source).UseQueryTrackingBehavior(QueryTrackingBehavior.NoTracking));

        WebApplication app = builder.Build();
        app.UseRouting();
        app.UseReadYourWrites();
        app.MapPost("/write", async (ItemsDb db) =>
        {
            var item = new Item { Text = "x" };
            db.Items.Add(item);
            await db.SaveChangesAsync();
            return Results.Text(item.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }).WithoutReadDecision();
        app.MapGet("/read/{id:int}", ReadAsync);
        app.MapGet("/stale/{id:int}", ReadAsync).WithReadYourWrites(onTimeout: ReadTimeoutAction.Stale);
        app.MapGet("/unavailable/{id:int}", (int id) => Results.Text("endpoint ran")).WithReadYourWrites(onTimeout: ReadTimeoutAction.Unavailable);
        app.MapGet("/patient/{id:int}", ReadAsync).WithReadYourWrites(TimeSpan.FromSeconds(10), ReadTimeoutAction.Primary);
        app.MapGet("/undecided", (ReadScope scope) => Results.Text(scope.DecisionOrNull is null ? "no decision" : "decided")).WithoutReadDecision();
        await app.StartAsync(Ct);
        return app;

        static async Task<IResult> ReadAsync(int id, [FromKeyedServices(ReadDbContext.Key)] ItemsDb reads, ReadDecision decision)
        {
            bool found = await reads.Items.AnyAsync(i => i.Id == id);
            bool replica = await reads.Database.SqlQueryRaw<bool>("select pg_is_in_recovery() as \"Value\"").SingleAsync();
            return Results.Text($"{(found ? "found" : "missing")} {(replica ? "replica" : "primary")} {decision.OutcomeName}");
        }
    }

    internal sealed class Item
    {
        public int Id { get; set; }

        public string Text { get; set; } = "";
    }

    internal sealed class ItemsDb(DbContextOptions<ItemsDb> options) : DbContext(options)
    {
        public DbSet<Item> Items => Set<Item>();

        protected override void OnModelCreating(ModelBuilder modelBuilder) =>
            modelBuilder.Entity<Item>(e =>
            {
                e.ToTable("rd_items");
                e.Property(i => i.Id).HasColumnName("id");
                e.Property(i => i.Text).HasColumnName("text");
            });
    }
}
