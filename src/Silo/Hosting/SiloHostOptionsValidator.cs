using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Npgsql;

namespace OrleansLsn.Silo.Hosting;

/// <summary>Validates <see cref="SiloHostOptions"/> before Orleans starts: every problem with its key, never a secret.</summary>
public sealed class SiloHostOptionsValidator : IValidateOptions<SiloHostOptions>
{
    private const string Prefix = "OrleansLsn:";

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, SiloHostOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        CheckId(failures, nameof(options.ClusterId), options.ClusterId);
        CheckId(failures, nameof(options.ServiceId), options.ServiceId);
        if (options.MembershipConnectionString is { } membership)
        {
            try
            {
                if (string.IsNullOrWhiteSpace(new NpgsqlConnectionStringBuilder(membership).Host))
                {
                    failures.Add($"{Prefix}MembershipConnectionString has no Host.");
                }
            }
            catch (ArgumentException)
            {
                failures.Add($"{Prefix}MembershipConnectionString is not a valid PostgreSQL connection string.");
            }
        }

        CheckPort(failures, nameof(options.SiloPort), options.SiloPort, allowZero: false);
        CheckPort(failures, nameof(options.GatewayPort), options.GatewayPort, allowZero: false);
        CheckPort(failures, nameof(options.HttpPort), options.HttpPort, allowZero: false);
        CheckPort(failures, nameof(options.DashboardPort), options.DashboardPort, allowZero: true);
        int[] ports = [.. new[] { options.SiloPort, options.GatewayPort, options.HttpPort, options.DashboardPort }.Where(p => p > 0)];
        if (ports.Distinct().Count() != ports.Length)
        {
            failures.Add($"{Prefix}SiloPort, GatewayPort, HttpPort and DashboardPort must all differ; they are {options.SiloPort}, {options.GatewayPort}, {options.HttpPort} and {options.DashboardPort}.");
        }

        if (options.AdvertisedAddress is { Length: > 0 } address && ResolveAdvertisedAddress(address) is null)
        {
            failures.Add($"{Prefix}AdvertisedAddress '{address}' is neither an IP address nor a host name that resolves to an IPv4 address.");
        }

        if (!Enum.IsDefined(options.Tls.Mode))
        {
            failures.Add($"{Prefix}Tls:Mode must be Required or Disabled.");
        }

        if (options.Tracing.OtlpEndpoint is { Length: > 0 } otlp
            && (!Uri.TryCreate(otlp, UriKind.Absolute, out Uri? endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps)))
        {
            failures.Add($"{Prefix}Tracing:OtlpEndpoint must be an absolute http:// or https:// address; it is '{otlp}'.");
        }

        if (!Enum.IsDefined(options.Tracing.OtlpProtocol))
        {
            failures.Add($"{Prefix}Tracing:OtlpProtocol must be Grpc or HttpProtobuf.");
        }

        if (!(options.Tracing.RootSampleRatio is >= 0 and <= 1))
        {
            failures.Add($"{Prefix}Tracing:RootSampleRatio must be between 0 and 1; it is {options.Tracing.RootSampleRatio}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The address to advertise: the configured one (resolved), else the first non-loopback IPv4, else 127.0.0.1.</summary>
    public static IPAddress? ResolveAdvertisedAddress(string? configured)
    {
        if (!string.IsNullOrEmpty(configured))
        {
            if (IPAddress.TryParse(configured, out IPAddress? ip))
            {
                return ip;
            }

            try
            {
                return Dns.GetHostAddresses(configured).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork);
            }
            catch (SocketException)
            {
                return null;
            }
        }

        IPAddress? first = System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == System.Net.NetworkInformation.OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(u => u.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        return first ?? IPAddress.Loopback;
    }

    private static void CheckId(List<string> failures, string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Length > 128 || value.Any(char.IsControl))
        {
            failures.Add($"{Prefix}{key} must be 1 to 128 printable characters.");
        }
    }

    private static void CheckPort(List<string> failures, string key, int port, bool allowZero)
    {
        if (port < (allowZero ? 0 : 1) || port > 65535)
        {
            failures.Add($"{Prefix}{key} must be between {(allowZero ? 0 : 1)} and 65535; it is {port}.");
        }
    }
}
