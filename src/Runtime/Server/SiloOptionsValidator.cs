using Microsoft.Extensions.Options;

namespace OrleansLsn.Runtime;

/// <summary>Checks <see cref="SiloOptions"/> when the host starts.</summary>
public sealed class SiloOptionsValidator : IValidateOptions<SiloOptions>, IValidateOptions<GrainCollectionOptions>
{
    /// <summary>The smallest accepted cluster secret length, in characters.</summary>
    public const int MinimumSecretLength = 16;

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, SiloOptions options)
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

        if (options.GatewayPort is < 0 or > 65535)
        {
            failures.Add($"GatewayPort must be 0..65535 (got {options.GatewayPort}).");
        }

        if (options.TlsCertificate is { HasPrivateKey: false })
        {
            failures.Add("TlsCertificate must include its private key.");
        }

        Positive(failures, nameof(options.ResponseTimeout), options.ResponseTimeout);
        Positive(failures, nameof(options.HandshakeTimeout), options.HandshakeTimeout);
        if (options.MaxFrameSize < 64 * 1024)
        {
            failures.Add("MaxFrameSize must be at least 64 KiB.");
        }

        if (options.MaxPendingRequestsPerConnection < 1)
        {
            failures.Add("MaxPendingRequestsPerConnection must be positive.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, GrainCollectionOptions options)
    {
        var failures = new List<string>();
        Positive(failures, nameof(options.CollectionAge), options.CollectionAge);
        Positive(failures, nameof(options.CollectionQuantum), options.CollectionQuantum);
        Positive(failures, nameof(options.ActivationTimeout), options.ActivationTimeout);
        Positive(failures, nameof(options.DeactivationTimeout), options.DeactivationTimeout);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Positive(List<string> failures, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero || value > TimeSpan.FromDays(1))
        {
            failures.Add($"{name} must be positive and at most one day (got {value}).");
        }
    }
}
