using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace OrleansLsn.Hosting;

/// <summary>
/// Reads the <c>…File</c> keys of <see cref="OrleansLsnOptions"/> (<c>PrimaryConnectionStringFile</c>,
/// <c>ReplicaConnectionStringFile</c>) into their connection strings once, when the options are built, and reports what
/// went wrong (both keys set, a missing, unreadable or empty file) with the options' validation, each problem named by
/// its key and path and never with a file's content.
/// </summary>
public sealed class OrleansLsnSecretFiles : IPostConfigureOptions<OrleansLsnOptions>, IValidateOptions<OrleansLsnOptions>
{
    private const string Prefix = OrleansLsnOptions.SectionName + ":";
    private readonly ConcurrentDictionary<string, IReadOnlyList<string>> _failures = new(StringComparer.Ordinal);

    /// <summary>
    /// Replaces each connection string given by a file with the file's content; problems are added to
    /// <paramref name="failures"/>. For options bound by hand; the options pipeline of
    /// <see cref="OrleansLsnSiloBuilderExtensions.AddOrleansLsn(ISiloBuilder, Microsoft.Extensions.Configuration.IConfiguration)"/>
    /// does this by itself.
    /// </summary>
    public static void Resolve(OrleansLsnOptions options, List<string> failures)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(failures);
        options.PrimaryConnectionString = SecretFile.Resolve(
            Prefix + nameof(options.PrimaryConnectionString), options.PrimaryConnectionString, options.PrimaryConnectionStringFile, failures) ?? "";
        options.ReplicaConnectionString = SecretFile.Resolve(
            Prefix + nameof(options.ReplicaConnectionString), options.ReplicaConnectionString, options.ReplicaConnectionStringFile, failures) ?? "";
    }

    /// <inheritdoc />
    public void PostConfigure(string? name, OrleansLsnOptions options)
    {
        var failures = new List<string>();
        Resolve(options, failures);
        _failures[name ?? Options.DefaultName] = failures;
    }

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, OrleansLsnOptions options) =>
        _failures.TryGetValue(name ?? Options.DefaultName, out IReadOnlyList<string>? failures) && failures.Count > 0
            ? ValidateOptionsResult.Fail(failures)
            : ValidateOptionsResult.Success;
}
