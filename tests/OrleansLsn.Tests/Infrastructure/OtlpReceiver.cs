using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>An OTLP/HTTP trace receiver: keeps every body POSTed to <c>/v1/traces</c> and answers an empty response.</summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<byte[]> _bodies = new();
    private volatile string? _contentType;

    private OtlpReceiver(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public string? ContentType => _contentType;

    /// <summary>Every body received so far, in order.</summary>
    public IReadOnlyList<byte[]> Bodies => [.. _bodies];

    public static async Task<OtlpReceiver> StartAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        WebApplication app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/traces", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            receiver._contentType = context.Request.ContentType;
            receiver._bodies.Enqueue(body.ToArray());
            context.Response.ContentType = "application/x-protobuf";
            context.Response.StatusCode = StatusCodes.Status200OK;
        });
        await app.StartAsync(TestContext.Current.CancellationToken);
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Port = new Uri(address).Port;
        return receiver;
    }

    public async Task<byte[]> WaitForAsync(Func<byte[], bool> match, TimeSpan timeout, string what)
    {
        byte[]? found = null;
        await Wait.UntilAsync(() => (found = _bodies.FirstOrDefault(match)) is not null, timeout, () => $"{what} ({_bodies.Count} requests, {_bodies.Sum(b => b.Length)} bytes)", TestContext.Current.CancellationToken);
        Assert.NotEmpty(found!);
        return found!;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
