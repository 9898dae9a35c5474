namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// The Docker backend's PostgreSQL image: its name, where that choice came from, the major version the run asked for
/// (<c>ORLEANSLSN_PG_VERSION</c>; <see langword="null"/> when it did not ask) and the command that builds the image.
/// </summary>
public sealed record TestPostgresImage(string Name, string Source, int? Version, string BuildCommand)
{
    /// <summary>The prefix of the images <c>deploy/local-images.sh</c> builds: never in a registry, so never pulled.</summary>
    public const string LocalPrefix = "orleanslsn-local/";

    /// <summary>Whether the image is a local build (a missing one is an error naming <see cref="BuildCommand"/>, not a pull).</summary>
    public bool IsLocalBuild => Name.StartsWith(LocalPrefix, StringComparison.Ordinal);

    public override string ToString() => $"{Name} from {Source}";
}
