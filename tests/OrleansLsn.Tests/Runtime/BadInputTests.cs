using OrleansLsn.Runtime;
using OrleansLsn.Runtime.Invocation;
using OrleansLsn.Runtime.Messaging;
using OrleansLsn.Runtime.TestHost;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class BadInputTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 60_000)]
    public async Task GarbageBeforeTheHandshake_ClosesThatConnection_WithALogLine()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using RawPeer peer = await RawPeer.ConnectAsync(silo.Silo.EndPoint.Port, Ct);

        await peer.SendAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray(), Ct);

        await peer.WaitForCloseAsync(Ct).WaitAsync(Deadline, Ct);
        await Wait.UntilAsync(() => silo.Logs.Any(l => l.Contains("during the handshake", StringComparison.Ordinal)), Deadline, () => "a log line for the closed connection");
    }

    [Theory(Timeout = 60_000)]
    [InlineData("oversized")]
    [InlineData("zero-length")]
    [InlineData("unknown-kind")]
    [InlineData("malformed-request")]
    [InlineData("truncated")]
    public async Task BrokenFrame_AfterTheHandshake_ClosesOnlyThatConnection(string kind)
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient good = await silo.ConnectAsync();
        await using RawPeer peer = await RawPeer.ConnectAsync(silo.Silo.EndPoint.Port, Ct);
        await peer.HandshakeAsync(SiloHarness.Secret, Ct);

        byte[] bytes = kind switch
        {
            "oversized" => [0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3],
            "zero-length" => [0, 0, 0, 0],
            "unknown-kind" => [3, 0, 0, 0, 99, 1, 2],
            "malformed-request" => [4, 0, 0, 0, (byte)MessageKind.Request, 0xFF, 0xFF, 0xFF],
            _ => [100, 0, 0, 0, (byte)MessageKind.Request, 1, 2],
        };
        await peer.SendAsync(bytes, Ct);
        if (kind == "truncated")
        {
            // Half a frame, then the peer goes away.
            await peer.DisposeAsync();
        }
        else
        {
            await peer.WaitForCloseAsync(Ct).WaitAsync(Deadline, Ct);
        }

        await Wait.UntilAsync(() => silo.Logs.Any(l => l.Contains("broke the protocol", StringComparison.Ordinal)), Deadline, () => "a protocol log line");
        Assert.Equal("still fine", await good.GetGrain<IEchoGrain>("e").Echo("still fine"));
    }

    [Fact(Timeout = 60_000)]
    public async Task UnknownMethodId_GetsAnErrorResponse_AndTheConnectionStaysUsable()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using RawPeer peer = await RawPeer.ConnectAsync(silo.Silo.EndPoint.Port, Ct);
        await peer.HandshakeAsync(SiloHarness.Secret, Ct);
        uint echoInterface = new InterfaceRegistry(new OrleansLsn.Runtime.Serialization.ContractSerializer()).Get(typeof(IEchoGrain)).Id;

        await peer.SendFrameAsync(RawPeer.Request(echoInterface, "k", 0xDEADBEEF, []), Ct);
        byte[]? response = await peer.ReadFrameAsync(Ct).WaitAsync(Deadline, Ct);

        Assert.NotNull(response);
        Assert.Equal((byte)MessageKind.Response, response[0]);
        Assert.Equal((byte)ResponseStatus.UnknownMethod, response[2]);

        // Arguments that do not match the method: an exception response, not a dead connection.
        uint add = new InterfaceRegistry(new OrleansLsn.Runtime.Serialization.ContractSerializer()).Get(typeof(IEchoGrain)).Methods.Single(m => m.Name == nameof(IEchoGrain.Add)).Id;
        await peer.SendFrameAsync(RawPeer.Request(echoInterface, "k", add, [0xFF]), Ct);
        response = await peer.ReadFrameAsync(Ct).WaitAsync(Deadline, Ct);
        Assert.NotNull(response);
        Assert.Equal((byte)ResponseStatus.Exception, response[2]);
    }

    [Fact(Timeout = 60_000)]
    public async Task Fuzz_RandomFramesAtThePort_DoNotDisturbAWellBehavedClient()
    {
        await using SiloHarness silo = await SiloHarness.StartAsync();
        await using ClusterClient good = await silo.ConnectAsync();
        int seed = Environment.TickCount;
        var random = new Random(seed);
        uint echoInterface = new InterfaceRegistry(new OrleansLsn.Runtime.Serialization.ContractSerializer()).Get(typeof(IEchoGrain)).Id;
        using var stop = new CancellationTokenSource();
        int goodCalls = 0;
        Task goodLoop = Task.Run(async () =>
        {
            IEchoGrain grain = good.GetGrain<IEchoGrain>("fuzz");
            while (!stop.IsCancellationRequested)
            {
                int n = goodCalls;
                Assert.Equal(n + 1, await grain.Add(n, 1));
                goodCalls++;
            }
        }, Ct);

        for (int round = 0; round < 150; round++)
        {
            await using RawPeer peer = await RawPeer.ConnectAsync(silo.Silo.EndPoint.Port, Ct);
            bool authenticated = random.Next(3) != 0;
            if (authenticated)
            {
                await peer.HandshakeAsync(SiloHarness.Secret, Ct);
            }

            for (int frame = 0; frame < random.Next(1, 6); frame++)
            {
                await peer.SendAsync(RandomFrame(random, echoInterface), Ct);
            }
        }

        await stop.CancelAsync();
        await goodLoop.WaitAsync(Deadline, Ct);
        Assert.True(goodCalls > 0, $"seed {seed}: the good client made no call");

        // The silo still accepts and serves new clients, and every fuzz connection went away.
        await using ClusterClient late = await silo.ConnectAsync();
        Assert.Equal("after fuzz", await late.GetGrain<IEchoGrain>("after").Echo("after fuzz"));
        await Wait.UntilAsync(() => silo.Silo.ConnectedClients == 2, Deadline, () => $"seed {seed}: {silo.Silo.ConnectedClients} clients connected, expected the 2 real ones");
    }

    private static byte[] RandomFrame(Random random, uint echoInterface)
    {
        switch (random.Next(5))
        {
            case 0:
                // Pure garbage.
                byte[] garbage = new byte[random.Next(1, 300)];
                random.NextBytes(garbage);
                return garbage;
            case 1:
                // A plausible length with a random body.
                byte[] body = new byte[random.Next(1, 200)];
                random.NextBytes(body);
                return [.. BitConverter.GetBytes(body.Length), .. body];
            case 2:
                // A real request header with random arguments.
                byte[] args = new byte[random.Next(0, 64)];
                random.NextBytes(args);
                byte[] request = RawPeer.Request(echoInterface, "fuzz-" + random.Next(10), (uint)random.Next(), args);
                return [.. BitConverter.GetBytes(request.Length), .. request];
            case 3:
                // A request frame cut short at a random point.
                byte[] whole = RawPeer.Request(echoInterface, "k", 1, [1, 2, 3]);
                byte[] framed = [.. BitConverter.GetBytes(whole.Length), .. whole];
                return framed[..random.Next(1, framed.Length)];
            default:
                // A huge or negative length.
                return BitConverter.GetBytes(random.Next(2) == 0 ? int.MaxValue - random.Next(100) : -random.Next(1, 100));
        }
    }
}
