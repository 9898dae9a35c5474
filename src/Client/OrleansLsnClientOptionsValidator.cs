using Microsoft.Extensions.Options;
using Npgsql;

namespace OrleansLsn.Client;

/// <summary>
/// Validates <see cref="OrleansLsnClientOptions"/> when the client's host starts: every problem is reported together,
/// each named by its configuration key (<c>OrleansLsn:...</c>); no value of a connection string is ever shown.
/// </summary>
public sealed class OrleansLsnClientOptionsValidator : IValidateOptions<OrleansLsnClientOptions>
{
    private const string Prefix = OrleansLsnClientOptions.SectionName + ":";
    private static readonly TimeSpan MinPeriod = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxPeriod = TimeSpan.FromHours(1);

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, OrleansLsnClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        CheckId(failures, nameof(options.ClusterId), options.ClusterId);
        CheckId(failures, nameof(options.ServiceId), options.ServiceId);
        if (!string.IsNullOrWhiteSpace(options.MembershipConnectionString))
        {
            CheckConnectionString(failures, Prefix + nameof(options.MembershipConnectionString), options.MembershipConnectionString);
        }
        else if (!string.IsNullOrWhiteSpace(options.PrimaryConnectionString))
        {
            CheckConnectionString(
                failures,
                $"{Prefix}{nameof(options.PrimaryConnectionString)} (used for membership, as {Prefix}{nameof(options.MembershipConnectionString)} is not set)",
                options.PrimaryConnectionString);
        }
        else if (string.IsNullOrWhiteSpace(options.MembershipConnectionStringFile) && string.IsNullOrWhiteSpace(options.PrimaryConnectionStringFile))
        {
            // (With a …File key set, an empty value means its file could not be read: that problem is reported by its own key.)
            failures.Add($"{Prefix}{nameof(options.MembershipConnectionString)} is required (or {Prefix}{nameof(options.PrimaryConnectionString)}, which it falls back to; either may be given as a file with its ...File key).");
        }

        ClientConnectionOptions client = options.Client ?? new ClientConnectionOptions();
        RequireBetween(failures, "Client:" + nameof(client.GatewayListRefreshPeriod), client.GatewayListRefreshPeriod);
        RequireBetween(failures, "Client:" + nameof(client.ResponseTimeout), client.ResponseTimeout);
        if (client.ConnectTimeout < TimeSpan.FromSeconds(1) || client.ConnectTimeout > MaxPeriod)
        {
            failures.Add($"{Prefix}Client:{nameof(client.ConnectTimeout)} must be between {TimeSpan.FromSeconds(1)} and {MaxPeriod}; it is {client.ConnectTimeout}.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckId(List<string> failures, string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            failures.Add($"{Prefix}{key} is required.");
        }
        else if (value.Trim().Length != value.Length)
        {
            failures.Add($"{Prefix}{key} has leading or trailing white space ('{value}').");
        }
    }

    private static void CheckConnectionString(List<string> failures, string key, string value)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(value);
            if (string.IsNullOrWhiteSpace(builder.Host))
            {
                failures.Add($"{key} has no Host.");
            }
        }
        catch (ArgumentException)
        {
            // The exception's message may quote the value; say only which key is wrong.
            failures.Add($"{key} is not a valid PostgreSQL connection string.");
        }
    }

    private static void RequireBetween(List<string> failures, string key, TimeSpan value)
    {
        if (value < MinPeriod || value > MaxPeriod)
        {
            failures.Add($"{Prefix}{key} must be between {MinPeriod} and {MaxPeriod}; it is {value}.");
        }
    }
}
