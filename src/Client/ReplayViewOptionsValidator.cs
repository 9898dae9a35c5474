using Microsoft.Extensions.Options;

namespace OrleansLsn.Client;

/// <summary>Validates <see cref="ReplayViewOptions"/>; each problem names its property.</summary>
public sealed class ReplayViewOptionsValidator : IValidateOptions<ReplayViewOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ReplayViewOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        RequireBetween(failures, nameof(options.StaleAfter), options.StaleAfter, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        RequireBetween(failures, nameof(options.RenewalPeriod), options.RenewalPeriod, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1));
        RequireBetween(failures, nameof(options.CallTimeout), options.CallTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        RequireBetween(failures, nameof(options.IdleLifetime), options.IdleLifetime, TimeSpan.FromMilliseconds(100), TimeSpan.FromDays(1));
        RequireBetween(failures, nameof(options.RetryInitialDelay), options.RetryInitialDelay, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1));
        RequireBetween(failures, nameof(options.RetryMaxDelay), options.RetryMaxDelay, options.RetryInitialDelay, TimeSpan.FromMinutes(1));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void RequireBetween(List<string> failures, string key, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
        {
            failures.Add($"{key} must be between {min} and {max}; it is {value}.");
        }
    }
}
