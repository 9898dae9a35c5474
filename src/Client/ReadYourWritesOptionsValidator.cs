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
            failures.Add($"{nameof(options.OnTimeout)} must be {nameof(ReadYourWritesTimeoutPolicy.Throw)} or {nameof(ReadYourWritesTimeoutPolicy.UsePrimary)}; it is {(int)options.OnTimeout}.");
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
