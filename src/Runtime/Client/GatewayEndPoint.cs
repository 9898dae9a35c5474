using System.Globalization;

namespace OrleansLsn.Runtime;

/// <summary>A gateway address, <c>host:port</c> (IPv6 literals in brackets).</summary>
internal readonly record struct GatewayEndPoint(string Host, int Port)
{
    public static bool TryParse(string? text, out GatewayEndPoint endPoint)
    {
        endPoint = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            return false;
        }

        string host = text[..colon].Trim('[', ']');
        if (host.Length == 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            return false;
        }

        endPoint = new GatewayEndPoint(host, port);
        return true;
    }

    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
