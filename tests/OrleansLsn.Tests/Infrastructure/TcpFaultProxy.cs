using System.Net;
using System.Net.Sockets;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// A loopback TCP proxy in front of a real server, for fault injection: <see cref="Freeze"/> stops moving bytes in both
/// directions (a hung server or a black-holed network: connections stay open, nothing arrives), <see cref="Thaw"/>
/// resumes, <see cref="DropConnections"/> resets every proxied connection, <see cref="Retarget"/> sends new connections to
/// another server (a replica replaced behind the same address).
/// </summary>
public sealed class TcpFaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    private readonly Lock _lock = new();
    private readonly Task _acceptLoop;
    private TaskCompletionSource _thawed = NewThawed(completed: true);

    public TcpFaultProxy(string targetHost, int targetPort)
    {
        _target = new IPEndPoint(IPAddress.Parse(targetHost), targetPort);
        _listener.Start();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>New connections go to <paramref name="targetHost"/>:<paramref name="targetPort"/>; open ones stay where they are.</summary>
    public void Retarget(string targetHost, int targetPort)
    {
        lock (_lock)
        {
            _target = new IPEndPoint(IPAddress.Parse(targetHost), targetPort);
        }
    }

    public void Freeze()
    {
        lock (_lock)
        {
            if (_thawed.Task.IsCompleted)
            {
                _thawed = NewThawed(completed: false);
            }
        }
    }

    public void Thaw()
    {
        lock (_lock)
        {
            _thawed.TrySetResult();
        }
    }

    public void DropConnections()
    {
        lock (_lock)
        {
            foreach ((TcpClient client, TcpClient server) in _pairs)
            {
                try
                {
                    // Linger 0: close with RST, like a crashed peer, rather than an orderly FIN.
                    client.Client?.LingerState = new LingerOption(true, 0);
                }
                catch (ObjectDisposedException)
                {
                }

                client.Dispose();
                server.Dispose();
            }

            _pairs.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Thaw();
        DropConnections();
        try
        {
            await _acceptLoop;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private static TaskCompletionSource NewThawed(bool completed)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed)
        {
            tcs.SetResult();
        }

        return tcs;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var server = new TcpClient();
            IPEndPoint target;
            lock (_lock)
            {
                target = _target;
            }

            try
            {
                await server.ConnectAsync(target, _stop.Token);
            }
            catch (SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            lock (_lock)
            {
                _pairs.Add((client, server));
            }

            _ = PumpAsync(client, server);
            _ = PumpAsync(server, client);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            NetworkStream input = from.GetStream();
            NetworkStream output = to.GetStream();
            while (true)
            {
                Task thawed;
                lock (_lock)
                {
                    thawed = _thawed.Task;
                }

                await thawed.WaitAsync(_stop.Token);
                int read = await input.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    break;
                }

                // Bytes read just before a freeze are held until the thaw, like a stalled link.
                lock (_lock)
                {
                    thawed = _thawed.Task;
                }

                await thawed.WaitAsync(_stop.Token);
                await output.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }
}
