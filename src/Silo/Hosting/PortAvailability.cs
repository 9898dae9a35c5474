using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// Checks, before the silo joins the cluster, that every port it will listen on is free: a silo that joined the
/// membership table and then failed to bind its HTTP port would be declared dead by the others a few seconds later,
/// with a stack trace instead of a reason.
/// </summary>
internal static class PortAvailability
{
    /// <summary>One problem per port that another process already listens on, named by its key; none when all are free.</summary>
    internal static IReadOnlyList<string> FindTaken(SiloHostOptions options)
    {
        var problems = new List<string>();
        foreach ((string key, int port) in new[]
        {
            ("SiloPort", options.SiloPort),
            ("GatewayPort", options.GatewayPort),
            ("HttpPort", options.HttpPort),
            ("DashboardPort", options.DashboardPort),
        })
        {
            if (port is > 0 and <= IPEndPoint.MaxPort && IsTaken(port) is { } error)
            {
                problems.Add(string.Create(
                    CultureInfo.InvariantCulture,
                    $"OrleansLsn:{key}: port {port} is already in use on this machine ({error}); stop what listens on it or choose another port."));
            }
        }

        return problems;
    }

    /// <summary>
    /// Binds and listens on <paramref name="port"/> on every IPv4 address, as the silo does, and returns why that failed,
    /// or <see langword="null"/>. <c>SO_REUSEADDR</c> is set as the silo's listeners set it, so connections of an earlier
    /// run still in <c>TIME_WAIT</c> do not count as a taken port; a listening socket does.
    /// </summary>
    private static string? IsTaken(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPAddress.Any, port));
            socket.Listen(1);
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AccessDenied)
        {
            return e.SocketErrorCode == SocketError.AddressAlreadyInUse ? "another process listens on it" : "binding it needs privileges this process lacks";
        }
    }
}
