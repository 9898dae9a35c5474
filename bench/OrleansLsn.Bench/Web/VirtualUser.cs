using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;

namespace OrleansLsn.Bench.Web;

/// <summary>
/// A person with a browser: opens <c>/</c>, follows the redirect to a new list, adds an item (a unique text) through the
/// form, follows the 303 back to the list at once, and reads the list again at <c>laterReads</c> think times after the
/// write. Every request is a new TCP connection (<c>Connection: close</c>); the cookies (the causal token, the
/// antiforgery cookie, Rails' last write) travel in this user's own cookie container, as a browser's do.
/// </summary>
internal static partial class VirtualUser
{
    private const string AntiforgeryField = "__RequestVerificationToken";

    /// <summary>Runs one user against <paramref name="app"/>; the reads after the write, in order.</summary>
    /// <param name="app">The app's base address.</param>
    /// <param name="laterReads">When to read again, counted from the write's answer.</param>
    /// <param name="cancellationToken">Ends the user.</param>
    /// <exception cref="InvalidOperationException">A request did not answer as the sample does (the phase and status are named).</exception>
    public static async Task<List<ReadSample>> RunAsync(Uri app, IReadOnlyList<TimeSpan> laterReads, CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler
        {
            UseCookies = true,
            CookieContainer = new CookieContainer(),
            AllowAutoRedirect = false,
            PooledConnectionLifetime = TimeSpan.Zero,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        using var http = new HttpClient(handler) { BaseAddress = app, Timeout = TimeSpan.FromSeconds(30) };

        using HttpResponseMessage start = await SendAsync(http, HttpMethod.Get, "/", null, cancellationToken).ConfigureAwait(false);
        string list = start.StatusCode == HttpStatusCode.Redirect && start.Headers.Location is { } location
            ? location.OriginalString
            : throw Unexpected("GET /", start);

        (string firstPage, _) = await ReadPageAsync(http, list, "the new list", cancellationToken).ConfigureAwait(false);
        Match token = AntiforgeryInput().Match(firstPage);
        if (!token.Success)
        {
            throw new InvalidOperationException($"The list page has no {AntiforgeryField} input.");
        }

        string text = "bench-" + Guid.NewGuid().ToString("N");
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["text"] = text,
            [AntiforgeryField] = WebUtility.HtmlDecode(token.Groups[1].Value),
        });
        using HttpResponseMessage added = await SendAsync(http, HttpMethod.Post, list + "/items", form, cancellationToken).ConfigureAwait(false);
        if (added.StatusCode != HttpStatusCode.SeeOther || added.Headers.Location is not { } back)
        {
            throw Unexpected("POST " + list + "/items", added);
        }

        long written = Stopwatch.GetTimestamp();
        var reads = new List<ReadSample>(laterReads.Count + 1) { await ReadBackAsync(http, back.OriginalString, text, written, atOnce: true, cancellationToken).ConfigureAwait(false) };
        foreach (TimeSpan at in laterReads)
        {
            TimeSpan wait = at - Stopwatch.GetElapsedTime(written);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }

            reads.Add(await ReadBackAsync(http, back.OriginalString, text, written, atOnce: false, cancellationToken).ConfigureAwait(false));
        }

        return reads;
    }

    private static async Task<ReadSample> ReadBackAsync(HttpClient http, string list, string text, long written, bool atOnce, CancellationToken cancellationToken)
    {
        double since = Stopwatch.GetElapsedTime(written).TotalMilliseconds;
        (string page, double latency) = await ReadPageAsync(http, list, atOnce ? "the read after the redirect" : "a later read", cancellationToken).ConfigureAwait(false);
        Match outcome = OutcomeAttribute().Match(page);
        int items = page.IndexOf("<ul id=\"items\">", StringComparison.Ordinal);
        int end = items < 0 ? -1 : page.IndexOf("</ul>", items, StringComparison.Ordinal);
        if (!outcome.Success || items < 0 || end < 0)
        {
            throw new InvalidOperationException($"A list page without data-outcome or <ul id=\"items\">: {page[..Math.Min(page.Length, 300)]}");
        }

        bool found = page.AsSpan(items, end - items).Contains($">{text}</li>", StringComparison.Ordinal);
        return new ReadSample(since, latency, outcome.Groups[1].Value, found, atOnce);
    }

    private static async Task<(string Page, double LatencyMs)> ReadPageAsync(HttpClient http, string path, string phase, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        using HttpResponseMessage response = await SendAsync(http, HttpMethod.Get, path, null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw Unexpected($"GET {path} ({phase})", response);
        }

        string page = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return (page, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };

        // A new connection for every request: the token must come back in the cookie, not in a connection's state.
        request.Headers.ConnectionClose = true;
        return await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static InvalidOperationException Unexpected(string what, HttpResponseMessage response) =>
        new($"{what} answered {(int)response.StatusCode} {response.ReasonPhrase}.");

    [GeneratedRegex("<input type=\"hidden\" name=\"__RequestVerificationToken\" value=\"([^\"]*)\">")]
    private static partial Regex AntiforgeryInput();

    [GeneratedRegex("<p id=\"read\" data-outcome=\"([^\"]*)\">")]
    private static partial Regex OutcomeAttribute();
}
