using Microsoft.Extensions.Options;

namespace OrleansLsn.Client;

/// <summary>Validates <see cref="ReadYourWritesOptions"/>; each problem names its property.</summary>
public sealed class ReadYourWritesOptionsValidator : IValidateOptions<ReadYourWritesOptions>
{
    /// <summary>The longest wait a tracker accepts.</summary>
    public static readonly TimeSpan MaxWaitTimeout = TimeSpan.FromSeconds(60);

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ReadYourWritesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (options.WaitTimeout <= TimeSpan.Zero || options.WaitTimeout > MaxWaitTimeout)
        {
            failures.Add($"{nameof(options.WaitTimeout)} must be positive and at most {MaxWaitTimeout}; it is {options.WaitTimeout}.");
        }

        if (!Enum.IsDefined(options.OnTimeout))
        {
            failures.Add($"{nameof(options.OnTimeout)} must be {nameof(ReadYourWritesTimeoutPolicy.Throw)}, {nameof(ReadYourWritesTimeoutPolicy.UsePrimary)} or {nameof(ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary)}; it is {(int)options.OnTimeout}.");
        }
        else if (options.OnTimeout == ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary && !options.UseReplayView)
        {
            failures.Add($"{nameof(options.OnTimeout)} {nameof(ReadYourWritesTimeoutPolicy.UseAnyReplicaOrPrimary)} needs {nameof(options.UseReplayView)} (it decides from the replay views, without waiting).");
        }

        if (options.ReplicaOrder is null || options.ReplicaOrder.Any(string.IsNullOrWhiteSpace))
        {
            failures.Add($"{nameof(options.ReplicaOrder)} must be a list of region names, none empty.");
        }

        if (options.RetryInitialDelay <= TimeSpan.Zero || options.RetryInitialDelay > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{nameof(options.RetryInitialDelay)} must be positive and at most 1 min; it is {options.RetryInitialDelay}.");
        }

        if (options.RetryMaxDelay < options.RetryInitialDelay || options.RetryMaxDelay > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{nameof(options.RetryMaxDelay)} must be at least {nameof(options.RetryInitialDelay)} and at most 1 min; it is {options.RetryMaxDelay}.");
        }

        if (options.CallGrace < TimeSpan.Zero || options.CallGrace > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{nameof(options.CallGrace)} must be between 0 and 1 min; it is {options.CallGrace}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
