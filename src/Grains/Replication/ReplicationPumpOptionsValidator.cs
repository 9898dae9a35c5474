using Microsoft.Extensions.Options;

namespace OrleansLsn.Replication;

/// <summary>Validates <see cref="ReplicationPumpOptions"/> at start-up (<c>ValidateOnStart</c>) and in the pump's constructor, before any SQL is sent.</summary>
public sealed class ReplicationPumpOptionsValidator : IValidateOptions<ReplicationPumpOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ReplicationPumpOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add($"{nameof(options.ConnectionString)} is required.");
        }

        AddIfInvalid(failures, nameof(options.SlotName), PostgresIdentifiers.CheckSlotName(options.SlotName));
        AddIfInvalid(failures, nameof(options.PublicationName), PostgresIdentifiers.CheckPublicationName(options.PublicationName));
        foreach (string table in options.PublicationTables)
        {
            AddIfInvalid(failures, nameof(options.PublicationTables), PostgresIdentifiers.CheckTableName(table));
        }

        foreach (string host in options.Hosts)
        {
            string? problem = PrimaryCandidate.TryParse(host ?? "", out _, out _);
            if (problem is not null)
            {
                failures.Add($"{nameof(options.Hosts)}: entry '{host}': {problem}.");
            }
        }

        if (options.HighWaterBytes <= 0 || options.LowWaterBytes < 0 || options.LowWaterBytes > options.HighWaterBytes)
        {
            failures.Add($"{nameof(options.HighWaterBytes)} must be positive and {nameof(options.LowWaterBytes)} between 0 and it; they are {options.HighWaterBytes} and {options.LowWaterBytes}.");
        }

        if (options.HighWaterBatches <= 0 || options.LowWaterBatches < 0 || options.LowWaterBatches > options.HighWaterBatches)
        {
            failures.Add($"{nameof(options.HighWaterBatches)} must be positive and {nameof(options.LowWaterBatches)} between 0 and it; they are {options.HighWaterBatches} and {options.LowWaterBatches}.");
        }

        if (options.MaxBatchChanges <= 0)
        {
            failures.Add($"{nameof(options.MaxBatchChanges)} must be positive; it is {options.MaxBatchChanges}.");
        }

        if (options.MaxBatchBytes <= 0)
        {
            failures.Add($"{nameof(options.MaxBatchBytes)} must be positive; it is {options.MaxBatchBytes}.");
        }

        RequirePositive(failures, nameof(options.MaxStatusInterval), options.MaxStatusInterval);
        RequirePositive(failures, nameof(options.MonitorInterval), options.MonitorInterval);
        RequirePositive(failures, nameof(options.QueryTimeout), options.QueryTimeout);
        RequirePositive(failures, nameof(options.RejoinTimeout), options.RejoinTimeout);
        if (options.CreatedSlotSnapshotLifetime < TimeSpan.Zero || options.CreatedSlotSnapshotLifetime > TimeSpan.FromHours(1))
        {
            failures.Add($"{nameof(options.CreatedSlotSnapshotLifetime)} must be between 0 and 1 h; it is {options.CreatedSlotSnapshotLifetime}.");
        }

        if (options.ReconnectInitialDelay <= TimeSpan.Zero || options.ReconnectMaxDelay < options.ReconnectInitialDelay)
        {
            failures.Add($"{nameof(options.ReconnectInitialDelay)} must be positive and at most {nameof(options.ReconnectMaxDelay)}.");
        }

        if (options.SubscriberRetryInitialDelay <= TimeSpan.Zero || options.SubscriberRetryMaxDelay < options.SubscriberRetryInitialDelay)
        {
            failures.Add($"{nameof(options.SubscriberRetryInitialDelay)} must be positive and at most {nameof(options.SubscriberRetryMaxDelay)}.");
        }

        if (options.ApplicationName is { Length: > PostgresIdentifiers.MaxLength })
        {
            failures.Add($"{nameof(options.ApplicationName)} must be at most {PostgresIdentifiers.MaxLength} characters.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void AddIfInvalid(List<string> failures, string option, string? problem)
    {
        if (problem is not null)
        {
            failures.Add($"{option}: {problem}.");
        }
    }

    private static void RequirePositive(List<string> failures, string option, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{option} must be positive; it is {value}.");
        }
    }
}
