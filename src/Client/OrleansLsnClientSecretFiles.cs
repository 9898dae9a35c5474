using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace OrleansLsn.Client;

/// <summary>
/// Reads the <c>…File</c> keys of <see cref="OrleansLsnClientOptions"/> (<c>MembershipConnectionStringFile</c>,
/// <c>PrimaryConnectionStringFile</c>) into their connection strings once, when the options are built, and reports what
/// went wrong (both keys set, a missing, unreadable or empty file) with the options' validation, named by key and path.
/// </summary>
internal sealed class OrleansLsnClientSecretFiles : IPostConfigureOptions<OrleansLsnClientOptions>, IValidateOptions<OrleansLsnClientOptions>
{
    private const string Prefix = OrleansLsnClientOptions.SectionName + ":";
    private readonly ConcurrentDictionary<string, IReadOnlyList<string>> _failures = new(StringComparer.Ordinal);

    public void PostConfigure(string? name, OrleansLsnClientOptions options)
    {
        var failures = new List<string>();
        options.MembershipConnectionString = SecretFile.Resolve(
            Prefix + nameof(options.MembershipConnectionString), options.MembershipConnectionString, options.MembershipConnectionStringFile, failures) ?? "";
        options.PrimaryConnectionString = SecretFile.Resolve(
            Prefix + nameof(options.PrimaryConnectionString), options.PrimaryConnectionString, options.PrimaryConnectionStringFile, failures) ?? "";
        _failures[name ?? Options.DefaultName] = failures;
    }

    public ValidateOptionsResult Validate(string? name, OrleansLsnClientOptions options) =>
        _failures.TryGetValue(name ?? Options.DefaultName, out IReadOnlyList<string>? failures) && failures.Count > 0
            ? ValidateOptionsResult.Fail(failures)
            : ValidateOptionsResult.Success;
}
