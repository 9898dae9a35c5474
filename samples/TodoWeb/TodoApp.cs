using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using OrleansLsn.AspNetCore;
using OrleansLsn.Client;
using OrleansLsn.EntityFrameworkCore;
using Npgsql;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace OrleansLsn.Samples.TodoWeb;

/// <summary>
/// The sample: to-do lists. A form adds an item on the primary (EF Core, its LSN captured by <c>UseLsnCapture</c>),
/// redirects, and the list page reads the region's replica through the read context (<c>AddReadDbContext</c>) as the
/// request's read decision says, and says where the read went and why. Everything OrleansLsn-specific is in
/// <see cref="Build"/>'s first lines.
/// </summary>
public static class TodoApp
{
    /// <summary>The longest item text accepted.</summary>
    public const int MaxText = 200;

    /// <summary>
    /// Builds the application from its configuration (the <c>OrleansLsn</c> section: the Orleans client's settings and
    /// <c>OrleansLsn:Reads</c>). <paramref name="configure"/> may change the builder first (tests and the benchmark give
    /// an Orleans client of their own, or a different read source).
    /// </summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        if (!builder.Services.Any(d => d.ServiceType == typeof(IClusterClient)))
        {
            builder.UseOrleansLsnClient();
        }

        // OrleansLsn: the causal token, the read decision, the write context capturing LSNs, the read context.
        builder.Services.AddReadYourWrites(builder.Configuration);
        builder.Services.AddDbContext<TodoDb>((sp, o) => o.UseNpgsql(sp.GetRequiredService<ReadRouter>().Primary).UseLsnCapture(sp));
        builder.Services.AddReadDbContext<TodoDb>((o, source) => o.UseNpgsql(source).UseQueryTrackingBehavior(QueryTrackingBehavior.NoTracking));
        builder.Services.TryAddTodoReads();
        builder.Services.AddAntiforgery();

        // Traces, exported over OTLP when an endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT, the exporter's own
        // variable): the request, the read decision and its wait, the Orleans calls, the SQL on the primary or replica.
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            builder.Services.AddOpenTelemetry()
                .ConfigureResource(r => r.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? "orleanslsn-todo-web"))
                .WithTracing(t => t.AddAspNetCoreInstrumentation().AddOrleansLsnInstrumentation().AddNpgsql().AddOtlpExporter());
        }

        WebApplication app = builder.Build();
        app.UseRouting();
        app.UseReadYourWrites();
        app.UseAntiforgery();
        app.MapGet("/", () => Results.Redirect($"/lists/{NewListId()}"));
        app.MapGet("/lists/{list}", ListAsync);
        app.MapPost("/lists/{list}/items", AddAsync).WithoutReadDecision();
        return app;
    }

    /// <summary>Creates the table, then starts the application.</summary>
    public static async Task StartAsync(WebApplication app, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(app);
        await TodoDb.EnsureSchemaAsync(app.Services.GetRequiredService<ReadRouter>().Primary, cancellationToken);
        await app.StartAsync(cancellationToken);
    }

    private static string NewListId() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    private static bool IsListId(string list) => list.Length is > 0 and <= 40 && list.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');

    private static async Task<IResult> ListAsync(string list, HttpContext context, TodoReads reads, IAntiforgery antiforgery)
    {
        if (!IsListId(list))
        {
            return Results.BadRequest("A list id is 1 to 40 characters a-z, 0-9 and '-'.");
        }

        (TodoDb db, string outcome, string said) = reads.Open(context);
        List<TodoItem> items = await db.Items.Where(i => i.List == list).OrderByDescending(i => i.Id).Take(100).ToListAsync(context.RequestAborted);
        return Results.Content(Page(list, items, outcome, said, antiforgery.GetAndStoreTokens(context), null), "text/html; charset=utf-8");
    }

    private static async Task<IResult> AddAsync(string list, [FromForm] string? text, TodoDb db, HttpContext context, TodoReads reads, IAntiforgery antiforgery)
    {
        if (!IsListId(list))
        {
            return Results.BadRequest("A list id is 1 to 40 characters a-z, 0-9 and '-'.");
        }

        text = text?.Trim();
        if (string.IsNullOrEmpty(text) || text.Length > MaxText)
        {
            // Nothing is written; the page says why and keeps what was typed.
            string problem = string.IsNullOrEmpty(text) ? "An item needs some text." : $"An item is at most {MaxText} characters.";
            return Results.Content(Page(list, [], "none", "Nothing was read: the item was refused.", antiforgery.GetAndStoreTokens(context), problem), "text/html; charset=utf-8", statusCode: 400);
        }

        db.Items.Add(new TodoItem { List = list, Text = text });
        await db.SaveChangesAsync(context.RequestAborted);
        return SeeOther(context, $"/lists/{list}"); // 303: the browser follows with a GET
    }

    private static IResult SeeOther(HttpContext context, string location)
    {
        context.Response.Headers.Location = location;
        return Results.StatusCode(StatusCodes.Status303SeeOther);
    }

    /// <summary>The sentence the page says about its read.</summary>
    public static string Describe(ReadDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        string lsn = decision.Token?.Lsn.ToString() ?? "";
        string ms = decision.Waited.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture);
        return decision.Outcome switch
        {
            ReadOutcome.NoToken when decision.Verdict == TokenVerdict.None => $"Read from the replica of {decision.Region} at once: this request carried no token, so there was no write of yours to wait for.",
            ReadOutcome.NoToken => $"Read from the replica of {decision.Region} at once: {decision.Why}.",
            ReadOutcome.Replayed => $"Read from the replica of {decision.Region} at once: it had already replayed your last change ({lsn}).",
            ReadOutcome.ReplayedAfterWait => $"Read from the replica of {decision.Region} after waiting {ms} ms for it to replay your last change ({lsn}).",
            ReadOutcome.Primary => $"Read from the primary: {decision.Why}.",
            ReadOutcome.Stale => $"Read from the replica of {decision.Region} without your last change ({lsn}): {decision.Why}.",
            _ => decision.Why,
        };
    }

    private static string Page(string list, List<TodoItem> items, string outcome, string said, AntiforgeryTokenSet tokens, string? problem)
    {
        HtmlEncoder e = HtmlEncoder.Default;
        var html = new StringBuilder();
        html.Append("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>To-do list</title>")
            .Append("<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}#read{padding:.5rem;background:#eef}#problem{color:#a00}</style></head><body>")
            .Append("<h1>To-do list</h1>")
            .Append(CultureInfo.InvariantCulture, $"<p id=\"read\" data-outcome=\"{e.Encode(outcome)}\">{e.Encode(said)}</p>");
        if (problem is not null)
        {
            html.Append(CultureInfo.InvariantCulture, $"<p id=\"problem\">{e.Encode(problem)}</p>");
        }

        html.Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"/lists/{e.Encode(list)}/items\">")
            .Append(CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"{e.Encode(tokens.FormFieldName)}\" value=\"{e.Encode(tokens.RequestToken ?? "")}\">")
            .Append(CultureInfo.InvariantCulture, $"<input name=\"text\" aria-label=\"New item\" required maxlength=\"{MaxText}\" autofocus> <button type=\"submit\">Add</button></form>")
            .Append("<ul id=\"items\">");
        foreach (TodoItem item in items)
        {
            html.Append(CultureInfo.InvariantCulture, $"<li data-id=\"{item.Id}\">{e.Encode(item.Text)}</li>");
        }

        return html.Append("</ul></body></html>").ToString();
    }
}

/// <summary>
/// Where the list page reads: by default the read context of the request's read decision. The benchmark replaces it to
/// compare other policies (always the primary, always the replica, the primary for a while after a write).
/// </summary>
public class TodoReads
{
    /// <summary>The context to read with, the outcome's name and the sentence the page says.</summary>
    public virtual (TodoDb Db, string Outcome, string Said) Open(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ReadDecision decision = context.RequestServices.GetRequiredService<ReadDecision>();
        return (context.RequestServices.GetRequiredKeyedService<TodoDb>(ReadDbContext.Key), decision.OutcomeName, TodoApp.Describe(decision));
    }
}

internal static class TodoReadsRegistration
{
    internal static void TryAddTodoReads(this IServiceCollection services)
    {
        if (!services.Any(d => d.ServiceType == typeof(TodoReads)))
        {
            services.AddSingleton<TodoReads>();
        }
    }
}
