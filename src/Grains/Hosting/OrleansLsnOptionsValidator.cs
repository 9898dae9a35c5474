using Microsoft.Extensions.Options;
using Npgsql;
using OrleansLsn.Placement;
using OrleansLsn.Replication;
using OrleansLsn.Tracking;

namespace OrleansLsn.Hosting;

/// <summary>
/// Validates <see cref="OrleansLsnOptions"/> at silo start (<c>ValidateOnStart</c>): every problem is reported together,
/// each with its configuration key (<c>OrleansLsn:...</c>), and no value of a connection string is ever shown.
/// </summary>
public sealed class OrleansLsnOptionsValidator : IValidateOptions<OrleansLsnOptions>
{
    private const string Prefix = OrleansLsnOptions.SectionName + ":";

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, OrleansLsnOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (RegionNames.Check(options.Region) is { } regionProblem)
        {
            failures.Add($"{Prefix}Region is required and must be a valid region name: {regionProblem}.");
        }

        CheckConnectionString(failures, nameof(options.PrimaryConnectionString), options.PrimaryConnectionString, options.PrimaryConnectionStringFile);
        CheckConnectionString(failures, nameof(options.ReplicaConnectionString), options.ReplicaConnectionString, options.ReplicaConnectionStringFile);
        if (options.PlacementMetadataWait < TimeSpan.Zero || options.PlacementMetadataWait > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{Prefix}{nameof(options.PlacementMetadataWait)} must be between 0 and 1 min; it is {options.PlacementMetadataWait}.");
        }

        AddPrefixed(failures, $"{Prefix}Tracker:", new LsnTrackerOptionsValidator().Validate(null, options.Tracker));
        if (options.Tracker.MaxWaitTimeout > OrleansLsnOptions.MaxGrainWaitTimeout)
        {
            failures.Add($"{Prefix}Tracker:MaxWaitTimeout must be at most {OrleansLsnOptions.MaxGrainWaitTimeout.TotalSeconds:0} s (the response timeout of RequestAndAwait is 65 s); it is {options.Tracker.MaxWaitTimeout}.");
        }

        TrackerObserverOptions observers = options.Observers;
        RequireBetween(failures, "Observers:SubscriptionExpiry", observers.SubscriptionExpiry, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));
        RequireBetween(failures, "Observers:PushTimeout", observers.PushTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(5));
        RequireBetween(failures, "Observers:NotificationLifetime", observers.NotificationLifetime, TimeSpan.FromMilliseconds(1), options.Tracker.MaxWaitTimeout);

        RequireBetween(failures, "Observers:MaxSubscribers", observers.MaxSubscribers, 1, 1_000_000);
        RequireBetween(failures, "Observers:ViewRefreshInterval", observers.ViewRefreshInterval, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1));
        ValidateReplication(failures, options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void ValidateReplication(List<string> failures, OrleansLsnOptions options)
    {
        ReplicationOptions replication = options.Replication;
        RequireBetween(failures, "Replication:SubscriberTimeout", replication.SubscriberTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1));
        RequireBetween(failures, "Replication:SubscribeTimeout", replication.SubscribeTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(5));
        RequireBetween(failures, "Replication:AlwaysOnCheckInterval", replication.AlwaysOnCheckInterval, TimeSpan.FromMilliseconds(100), TimeSpan.FromHours(1));
        RequireBetween(failures, "Replication:MaxSubscribers", replication.MaxSubscribers, 1, 1_000_000);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < replication.Slots.Count; i++)
        {
            ReplicationSlotOptions slot = replication.Slots[i];
            string key = $"{Prefix}Replication:Slots:{i}:";
            if (PostgresIdentifiers.CheckSlotName(slot.Name) is { } slotProblem)
            {
                failures.Add($"{key}Name: {slotProblem}.");
            }
            else if (!seen.Add(slot.Name))
            {
                failures.Add($"{key}Name: slot '{slot.Name}' is listed more than once.");
            }

            if (PostgresIdentifiers.CheckPublicationName(slot.Publication) is { } publicationProblem)
            {
                failures.Add($"{key}Publication: {publicationProblem}.");
            }

            for (int t = 0; t < slot.Tables.Count; t++)
            {
                if (PostgresIdentifiers.CheckTableName(slot.Tables[t]) is { } tableProblem)
                {
                    failures.Add($"{key}Tables:{t}: {tableProblem}.");
                }
            }

            for (int h = 0; h < slot.Hosts.Count; h++)
            {
                if (PrimaryCandidate.TryParse(slot.Hosts[h] ?? "", out _, out _) is { } hostProblem)
                {
                    failures.Add($"{key}Hosts:{h}: {hostProblem}.");
                }
            }
        }

        // The shared tuning, checked on a pump configuration that has a valid identity, so that only tuning problems show.
        ReplicationPumpOptions probe = PumpOptionsFactory.Create(options, new ReplicationSlotOptions { Name = "probe", Publication = "probe" }, "Host=localhost");
        AddPrefixed(failures, $"{Prefix}Replication:Pump:", new ReplicationPumpOptionsValidator().Validate(null, probe));
    }

    private static void CheckConnectionString(List<string> failures, string key, string? value, string? file)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            // With a …File key set, an empty value means the file could not be read: that problem is reported, by its
            // own key and path (OrleansLsnSecretFiles), and "required" would only mislead.
            if (string.IsNullOrWhiteSpace(file))
            {
                failures.Add($"{Prefix}{key} is required (or {Prefix}{key}File, a file holding it).");
            }

            return;
        }

        try
        {
            var builder = new NpgsqlConnectionStringBuilder(value);
            if (string.IsNullOrWhiteSpace(builder.Host))
            {
                failures.Add($"{Prefix}{key} has no Host.");
            }
        }
        catch (ArgumentException)
        {
            // The exception's message may quote the value; say only which key is wrong.
            failures.Add($"{Prefix}{key} is not a valid PostgreSQL connection string.");
        }
    }

    private static void RequireBetween(List<string> failures, string key, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
        {
            failures.Add($"{Prefix}{key} must be between {min} and {max}; it is {value}.");
        }
    }

    private static void RequireBetween(List<string> failures, string key, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            failures.Add($"{Prefix}{key} must be between {min} and {max}; it is {value}.");
        }
    }

    private static void AddPrefixed(List<string> failures, string prefix, ValidateOptionsResult result)
    {
        if (result.Failed)
        {
            failures.AddRange(result.Failures.Select(f => prefix + f));
        }
    }
}
