using Microsoft.Extensions.Options;

namespace OrleansLsn.Runtime;

/// <summary>Checks <see cref="ClientOptions"/> before the client connects.</summary>
public sealed class ClientOptionsValidator : IValidateOptions<ClientOptions>
{
    /// <summary>The smallest accepted cluster secret length, in characters.</summary>
    public const int MinimumSecretLength = 16;

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ClientOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterId))
        {
            failures.Add("ClusterId is required.");
        }

        if (options.ClusterSecret is null || options.ClusterSecret.Length < MinimumSecretLength)
        {
            failures.Add($"ClusterSecret must have at least {MinimumSecretLength} characters.");
        }

        if (options.Gateways.Count == 0)
        {
            failures.Add("At least one gateway (host:port) is required.");
        }

        foreach (string gateway in options.Gateways)
        {
            if (!GatewayEndPoint.TryParse(gateway, out _))
            {
                failures.Add($"Gateway '{gateway}' is not host:port with a port in 1..65535.");
            }
        }

        CheckPositive(failures, nameof(options.ResponseTimeout), options.ResponseTimeout);
        CheckPositive(failures, nameof(options.ConnectTimeout), options.ConnectTimeout);
        CheckPositive(failures, nameof(options.HandshakeTimeout), options.HandshakeTimeout);
        CheckPositive(failures, nameof(options.MaxReconnectBackoff), options.MaxReconnectBackoff);
        if (options.MaxFrameSize < 64 * 1024)
        {
            failures.Add("MaxFrameSize must be at least 64 KiB.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckPositive(List<string> failures, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero || value > TimeSpan.FromDays(1))
        {
            failures.Add($"{name} must be positive and at most one day (got {value}).");
        }
    }
}
