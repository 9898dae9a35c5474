using Microsoft.Extensions.Options;

namespace OrleansLsn.Tracking;

/// <summary>Validates <see cref="LsnTrackerOptions"/> at start-up (<c>ValidateOnStart</c>) and in the tracker's constructor.</summary>
public sealed class LsnTrackerOptionsValidator : IValidateOptions<LsnTrackerOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, LsnTrackerOptions options)
    {
        var failures = new List<string>();
        if (options.MaxWaitTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{nameof(options.MaxWaitTimeout)} must be positive; it is {options.MaxWaitTimeout}.");
        }

        if (options.DefaultWaitTimeout <= TimeSpan.Zero || options.DefaultWaitTimeout > options.MaxWaitTimeout)
        {
            failures.Add($"{nameof(options.DefaultWaitTimeout)} must be positive and at most {nameof(options.MaxWaitTimeout)} ({options.MaxWaitTimeout}); it is {options.DefaultWaitTimeout}.");
        }

        if (options.ActivePollInterval < TimeSpan.Zero || options.ActivePollInterval > TimeSpan.FromSeconds(1))
        {
            failures.Add($"{nameof(options.ActivePollInterval)} must be between 0 and 1 s; it is {options.ActivePollInterval}.");
        }

        if (options.FollowWindow < TimeSpan.Zero || options.FollowWindow > TimeSpan.FromSeconds(10))
        {
            failures.Add($"{nameof(options.FollowWindow)} must be between 0 and 10 s; it is {options.FollowWindow}.");
        }

        if (options.WatchPollInterval < TimeSpan.Zero)
        {
            failures.Add($"{nameof(options.WatchPollInterval)} must not be negative; it is {options.WatchPollInterval}.");
        }

        if (options.IdlePollInterval <= TimeSpan.Zero && options.IdlePollInterval != Timeout.InfiniteTimeSpan)
        {
            failures.Add($"{nameof(options.IdlePollInterval)} must be positive or Timeout.InfiniteTimeSpan; it is {options.IdlePollInterval}.");
        }

        if (options.QueryTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{nameof(options.QueryTimeout)} must be positive; it is {options.QueryTimeout}.");
        }

        if (options.ReconnectInitialDelay <= TimeSpan.Zero || options.ReconnectMaxDelay < options.ReconnectInitialDelay)
        {
            failures.Add($"{nameof(options.ReconnectInitialDelay)} must be positive and at most {nameof(options.ReconnectMaxDelay)}.");
        }

        if (options.MaxPendingWaitersPerClient < 1)
        {
            failures.Add($"{nameof(options.MaxPendingWaitersPerClient)} must be at least 1; it is {options.MaxPendingWaitersPerClient}.");
        }

        if (options.MaxPendingWaiters < 1)
        {
            failures.Add($"{nameof(options.MaxPendingWaiters)} must be at least 1; it is {options.MaxPendingWaiters}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
