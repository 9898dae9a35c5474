using Microsoft.Extensions.Options;
using Npgsql;

namespace OrleansLsn.Client;

/// <summary>
/// Where a process reads and how long a read may wait for its region's replica: the <c>OrleansLsn:Reads</c> section,
/// bound by <see cref="ReadRoutingServiceCollectionExtensions.AddReadRouting"/> and checked at start by
/// <see cref="ReadRoutingOptionsValidator"/> (a missing key is a start-up error that names it).
/// </summary>
/// <example>
/// <code>
/// "OrleansLsn": { "Reads": {
///   "Region": "eu-west",
///   "Primary": "Host=primary.internal;Database=app;Username=app",
///   "Replicas": { "eu-west": "Host=replica-eu.internal;Database=app;Username=app" },
///   "MaxWait": "00:00:01", "OnTimeout": "Primary" } }
/// </code>
/// </example>
public sealed class ReadRoutingOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "OrleansLsn:Reads";

    /// <summary>The region this process reads in: a tracker grain's key, and a key of <see cref="Replicas"/>. Required.</summary>
    public string? Region { get; set; }

    /// <summary>The primary's connection string: writes, and reads that cannot wait for the replica. Required.</summary>
    public string? Primary { get; set; }

    /// <summary>A file holding <see cref="Primary"/> instead (a container secret); read at start by <see cref="ReadRoutingServiceCollectionExtensions.AddReadRouting"/>.</summary>
    public string? PrimaryFile { get; set; }

    /// <summary>Replicas' connection strings by region; the one of <see cref="Region"/> is required.</summary>
    public Dictionary<string, string> Replicas { get; } = new(StringComparer.Ordinal);

    /// <summary>Files holding replicas' connection strings by region, instead of <see cref="Replicas"/>; read at start by <see cref="ReadRoutingServiceCollectionExtensions.AddReadRouting"/>.</summary>
    public Dictionary<string, string> ReplicaFiles { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// How long a read whose token the replica has not replayed waits for it, unless the endpoint says otherwise.
    /// Default 1 s; 0 (never wait) to 60 s (a tracker's longest wait).
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Where such a read goes when the wait ends without the write, unless the endpoint says otherwise. Default <see cref="ReadTimeoutAction.Primary"/>.</summary>
    public ReadTimeoutAction OnTimeout { get; set; } = ReadTimeoutAction.Primary;

    /// <summary>
    /// Decide in the client's replay view of the region (no grain call when the replica already has the write, a local
    /// waiter otherwise). Default <see langword="true"/>; <see langword="false"/> asks the tracker grain for every wait.
    /// </summary>
    public bool UseReplayView { get; set; } = true;

    /// <summary>
    /// How long asking the primary for its position may take (only for a token ahead of every position this process
    /// has seen, or on another timeline or database). Default 2 s, within the read's wait.
    /// </summary>
    public TimeSpan PrimaryCheckTimeout { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// Reads <see cref="ReadRoutingOptions.PrimaryFile"/> and <see cref="ReadRoutingOptions.ReplicaFiles"/> into their
/// connection strings once, when the options are built, and reports what went wrong (both keys set, a missing,
/// unreadable or empty file) with the options' validation, named by key and path, never by content.
/// </summary>
internal sealed class ReadRoutingSecretFiles : IPostConfigureOptions<ReadRoutingOptions>, IValidateOptions<ReadRoutingOptions>
{
    private const string Prefix = ReadRoutingOptions.Section + ":";
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<string>> _failures = new(StringComparer.Ordinal);

    public void PostConfigure(string? name, ReadRoutingOptions options)
    {
        var failures = new List<string>();
        options.Primary = SecretFile.Resolve(Prefix + nameof(options.Primary), options.Primary, options.PrimaryFile, failures);
        foreach ((string region, string file) in options.ReplicaFiles)
        {
            options.Replicas.TryGetValue(region, out string? value);
            if (SecretFile.Resolve($"{Prefix}Replicas:{region}", value, file, failures) is { } resolved)
            {
                options.Replicas[region] = resolved;
            }
        }

        _failures[name ?? Options.DefaultName] = failures;
    }

    public ValidateOptionsResult Validate(string? name, ReadRoutingOptions options) =>
        _failures.TryGetValue(name ?? Options.DefaultName, out IReadOnlyList<string>? failures) && failures.Count > 0
            ? ValidateOptionsResult.Fail(failures)
            : ValidateOptionsResult.Success;
}

/// <summary>Validates <see cref="ReadRoutingOptions"/>; each problem names its configuration key, never a connection string's value.</summary>
public sealed class ReadRoutingOptionsValidator : IValidateOptions<ReadRoutingOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ReadRoutingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        const string S = ReadRoutingOptions.Section;
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Region))
        {
            failures.Add($"{S}:Region is not set: the region whose replica this process reads (a tracker grain's key).");
        }
        else if (!options.Replicas.TryGetValue(options.Region, out string? replica) || string.IsNullOrWhiteSpace(replica))
        {
            failures.Add($"{S}:Replicas:{options.Region} is not set: the connection string of the replica of {S}:Region '{options.Region}' (or {S}:ReplicaFiles:{options.Region}, a file holding it).");
        }

        if (string.IsNullOrWhiteSpace(options.Primary))
        {
            failures.Add($"{S}:Primary is not set: the primary's connection string (or {S}:PrimaryFile, a file holding it).");
        }
        else if (!IsConnectionString(options.Primary))
        {
            failures.Add($"{S}:Primary is not a valid Npgsql connection string.");
        }

        foreach ((string region, string value) in options.Replicas)
        {
            if (string.IsNullOrWhiteSpace(region))
            {
                failures.Add($"{S}:Replicas has an empty region name.");
            }
            else if (!string.IsNullOrWhiteSpace(value) && !IsConnectionString(value))
            {
                failures.Add($"{S}:Replicas:{region} is not a valid Npgsql connection string.");
            }
        }

        if (options.MaxWait < TimeSpan.Zero || options.MaxWait > ReplayView.MaxWaitTimeout)
        {
            failures.Add($"{S}:MaxWait must be between 0 and {ReplayView.MaxWaitTimeout}; it is {options.MaxWait}.");
        }

        if (!Enum.IsDefined(options.OnTimeout))
        {
            failures.Add($"{S}:OnTimeout must be Primary, Stale or Unavailable; it is {(int)options.OnTimeout}.");
        }

        if (options.PrimaryCheckTimeout <= TimeSpan.Zero || options.PrimaryCheckTimeout > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{S}:PrimaryCheckTimeout must be positive and at most 1 min; it is {options.PrimaryCheckTimeout}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool IsConnectionString(string value)
    {
        try
        {
            _ = new NpgsqlConnectionStringBuilder(value);
            return true;
        }
        catch (ArgumentException)
        {
            return false; // its message may quote the value: never repeated
        }
    }
}
