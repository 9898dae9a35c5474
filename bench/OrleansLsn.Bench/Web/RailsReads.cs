using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using OrleansLsn.Samples.TodoWeb;

namespace OrleansLsn.Bench.Web;

/// <summary>
/// The <c>rails</c> policy, as Rails' <c>ActiveRecord::Middleware::DatabaseSelector</c> with its default resolver: a
/// request that is not a GET or HEAD records the time of the user's last write (after it ran, in a cookie here, the
/// session there), and a read goes to the primary while that time is less than <see cref="Delay"/> ago, else to the
/// replica.
/// </summary>
internal sealed class RailsReads(TimeProvider time) : BenchReads
{
    /// <summary>Rails' default <c>delay</c>: 2 seconds.</summary>
    public static readonly TimeSpan Delay = TimeSpan.FromSeconds(2);

    /// <summary>The cookie holding the user's last write time (Unix milliseconds).</summary>
    public const string CookieName = "bench-rails-last-write";

    public override (TodoDb Db, string Outcome, string Said) Open(HttpContext context)
    {
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (context.Request.Cookies[CookieName] is { } text
            && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long lastWrite)
            && now - lastWrite < (long)Delay.TotalMilliseconds)
        {
            return (Primary(context), "primary", string.Create(CultureInfo.InvariantCulture, $"Read from the primary: your last write was {now - lastWrite} ms ago (Rails' DatabaseSelector, {Delay.TotalSeconds:0} s)."));
        }

        return (Replica(context), "replica", "Read from the replica: no write of yours in the last 2 s (Rails' DatabaseSelector).");
    }

    /// <summary>The middleware that records the last write time on every response to a request that is not a read, as Rails' resolver does.</summary>
    internal sealed class LastWriteFilter(TimeProvider time) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
                {
                    context.Response.OnStarting(() =>
                    {
                        string now = time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
                        context.Response.Cookies.Append(CookieName, now, new CookieOptions { HttpOnly = true, Path = "/", SameSite = SameSiteMode.Lax, IsEssential = true });
                        return Task.CompletedTask;
                    });
                }

                await nextMiddleware(context).ConfigureAwait(false);
            });
            next(app);
        };
    }
}
