using System.Globalization;
using Npgsql;

namespace OrleansLsn.Replication;

/// <summary>
/// One server that may be the primary (an entry of <see cref="ReplicationPumpOptions.Hosts"/>, or one host of a
/// multi-host connection string), with the pump's two connection strings pinned to it.
/// </summary>
internal sealed class PrimaryCandidate
{
    private PrimaryCandidate(string name, string adminConnectionString, string replicationConnectionString)
    {
        Name = name;
        AdminConnectionString = adminConnectionString;
        ReplicationConnectionString = replicationConnectionString;
    }

    /// <summary><c>host:port</c>, for messages and logs (no other part of the connection string).</summary>
    internal string Name { get; }

    internal string AdminConnectionString { get; }

    internal string ReplicationConnectionString { get; }

    /// <summary>
    /// The candidates for <paramref name="options"/>: its <see cref="ReplicationPumpOptions.Hosts"/>, else the hosts of a
    /// connection string that names several, else none (the connection string is used as it is).
    /// </summary>
    /// <exception cref="ArgumentException">A host entry cannot be read; the message names it.</exception>
    internal static IReadOnlyList<PrimaryCandidate> From(ReplicationPumpOptions options, string adminConnectionString, string replicationConnectionString)
    {
        IEnumerable<string> hosts = options.Hosts;
        if (options.Hosts.Count == 0)
        {
            string host = new NpgsqlConnectionStringBuilder(options.ConnectionString).Host ?? "";
            if (!host.Contains(',', StringComparison.Ordinal))
            {
                return [];
            }

            hosts = host.Split(',');
        }

        var candidates = new List<PrimaryCandidate>();
        foreach (string entry in hosts)
        {
            string? problem = TryParse(entry, out string host, out int? port);
            if (problem is not null)
            {
                throw new ArgumentException($"Host entry '{entry}': {problem}.", nameof(options));
            }

            string admin = Pin(adminConnectionString, host, port, out int effectivePort);
            string replication = Pin(replicationConnectionString, host, port, out _);
            string name = host.Contains(':', StringComparison.Ordinal)
                ? string.Create(CultureInfo.InvariantCulture, $"[{host}]:{effectivePort}")
                : string.Create(CultureInfo.InvariantCulture, $"{host}:{effectivePort}");
            candidates.Add(new PrimaryCandidate(name, admin, replication));
        }

        return candidates;
    }

    /// <summary>
    /// Reads <c>host</c>, <c>host:port</c>, <c>[v6]</c>, <c>[v6]:port</c> or a bare IPv6 address; returns the problem, or
    /// <see langword="null"/>.
    /// </summary>
    internal static string? TryParse(string entry, out string host, out int? port)
    {
        host = "";
        port = null;
        string text = entry.Trim();
        string portText = "";
        if (text.Length == 0)
        {
            return "it is empty";
        }

        if (text[0] == '[')
        {
            int close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 2)
            {
                return "an IPv6 address in brackets needs its closing ']'";
            }

            host = text[1..close];
            string rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                {
                    return "only ':port' may follow ']'";
                }

                portText = rest[1..];
            }
        }
        else
        {
            int first = text.IndexOf(':', StringComparison.Ordinal);
            if (first >= 0 && first == text.LastIndexOf(':'))
            {
                host = text[..first];
                portText = text[(first + 1)..];
            }
            else
            {
                // No colon, or several: a bare IPv6 address.
                host = text;
            }
        }

        if (host.Length == 0)
        {
            return "the host is empty";
        }

        if (portText.Length > 0 || text.EndsWith(':'))
        {
            if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p is < 1 or > 65535)
            {
                return $"the port '{portText}' is not a number from 1 to 65535";
            }

            port = p;
        }

        return null;
    }

    private static string Pin(string connectionString, string host, int? port, out int effectivePort)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            Host = host,
            // Which host is the primary is decided by the pump (pg_is_in_recovery()), one host at a time.
            TargetSessionAttributes = null,
            LoadBalanceHosts = false,
        };
        if (port is int p)
        {
            builder.Port = p;
        }

        effectivePort = builder.Port;
        return builder.ConnectionString;
    }
}
