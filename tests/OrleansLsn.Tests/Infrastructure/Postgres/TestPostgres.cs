using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// The run's PostgreSQL backend, chosen once (<c>ORLEANSLSN_TEST_BACKEND</c> = <c>docker</c>, <c>local</c> or
/// <c>external</c>; by default the external servers when <c>ORLEANSLSN_TEST_PRIMARY</c>/<c>_STANDBY</c> are set, else
/// Docker when an engine answers, else the local binaries), and the factory of test clusters on it.
/// </summary>
public static class TestPostgres
{
    public const string BackendVariable = "ORLEANSLSN_TEST_BACKEND";

    /// <summary>The image of the Docker backend; default: deploy/local-images.env's value if that file exists, else <see cref="DefaultImage"/>.</summary>
    public const string ImageVariable = "ORLEANSLSN_TEST_POSTGRES_IMAGE";

    public const string DefaultImage = "postgres:17";

    /// <summary>The major version of the default images (Debian's PostgreSQL in deploy/local-images.sh's).</summary>
    public const int DebianVersion = 15;

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);
    private static readonly Lazy<Task<TestBackendChoice>> Choice = new(() => ChooseAsync(
        Environment.GetEnvironmentVariable(BackendVariable),
        !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(PostgresFixture.PrimaryEnvironmentVariable)) &&
        !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(PostgresFixture.StandbyEnvironmentVariable)),
        () => DockerEngine.ProbeAsync(ProbeTimeout)));

    /// <summary>The run's backend (asked once; the Docker probe takes at most a few seconds).</summary>
    public static Task<TestBackendChoice> GetBackendAsync() => Choice.Value;

    /// <summary>The Docker backend's image and where that choice came from (see <see cref="ChooseImage"/>).</summary>
    public static TestPostgresImage Image
    {
        get
        {
            string? file = FindLocalImagesEnv();
            return ChooseImage(
                Environment.GetEnvironmentVariable(ImageVariable),
                Environment.GetEnvironmentVariable(PostgresBinaries.VersionEnvironmentVariable),
                file is null ? null : (file, ReadVariable(file, ImageVariable)));
        }
    }

    /// <summary>
    /// The Docker backend's image: <c>ORLEANSLSN_TEST_POSTGRES_IMAGE</c> when set; else, for an
    /// <c>ORLEANSLSN_PG_VERSION</c> other than <see cref="DebianVersion"/>, <c>orleanslsn-local/postgres:&lt;version&gt;</c>
    /// (built by <c>deploy/local-images.sh --pg &lt;version&gt;</c>); else deploy/local-images.env's value, else
    /// <see cref="DefaultImage"/>. With a version asked for, the cluster checks that its primary runs that version.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="versionSetting"/> is not a major version.</exception>
    public static TestPostgresImage ChooseImage(string? imageSetting, string? versionSetting, (string File, string? Image)? localImagesEnv)
    {
        int? version = null;
        if (!string.IsNullOrWhiteSpace(versionSetting))
        {
            version = int.TryParse(versionSetting.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int v) && v >= 10
                ? v
                : throw new InvalidOperationException($"{PostgresBinaries.VersionEnvironmentVariable} must be a PostgreSQL major version such as 15 or 17, not '{versionSetting}'.");
        }

        const string DefaultBuild = "bash deploy/local-images.sh";
        string build = version is { } asked && asked != DebianVersion ? $"{DefaultBuild} --pg {asked}" : DefaultBuild;
        if (!string.IsNullOrWhiteSpace(imageSetting))
        {
            return new TestPostgresImage(imageSetting.Trim(), ImageVariable, version, build);
        }

        if (version is { } major && major != DebianVersion)
        {
            return new TestPostgresImage($"{TestPostgresImage.LocalPrefix}postgres:{major}", $"{PostgresBinaries.VersionEnvironmentVariable}={major}", version, build);
        }

        if (localImagesEnv is { Image: { Length: > 0 } local } env)
        {
            return new TestPostgresImage(local, env.File, version, build);
        }

        return new TestPostgresImage(DefaultImage, "default", version, build);
    }

    /// <summary>
    /// Starts a cluster of its own for a test on the run's backend (the external backend has none to give: its tests
    /// get local ones, as before backends existed).
    /// </summary>
    public static async Task<ITestPostgresCluster> StartClusterAsync(TestPostgresClusterOptions options, CancellationToken cancellationToken)
    {
        TestBackendChoice choice = await GetBackendAsync();
        return choice.Backend == TestBackend.Docker
            ? await DockerTestPostgresCluster.StartAsync(options, choice.Engine!, Image, cancellationToken)
            : await LocalTestPostgresCluster.StartAsync(options, cancellationToken);
    }

    /// <summary>The backend for a <c>ORLEANSLSN_TEST_BACKEND</c> value; throws with the reason when the one asked for cannot be had.</summary>
    public static async Task<TestBackendChoice> ChooseAsync(
        string? setting, bool externalServersGiven, Func<Task<(DockerEngine? Engine, string? Error)>> probeDocker)
    {
        string value = (setting ?? "").Trim().ToLowerInvariant();
        switch (value)
        {
            case "local":
                return new TestBackendChoice(TestBackend.Local, $"{BackendVariable}=local", null);
            case "external":
                return externalServersGiven
                    ? new TestBackendChoice(TestBackend.External, $"{BackendVariable}=external", null)
                    : throw new InvalidOperationException(
                        $"{BackendVariable}=external needs {PostgresFixture.PrimaryEnvironmentVariable} and {PostgresFixture.StandbyEnvironmentVariable} (and optionally {PostgresFixture.Standby2EnvironmentVariable}) to be set to connection strings.");
            case "docker":
            {
                (DockerEngine? engine, string? error) = await probeDocker();
                if (engine is null)
                {
                    throw new InvalidOperationException(
                        $"{BackendVariable}=docker, but no Docker engine answers ({error}). Start one (dockerd) or point DOCKER_HOST at it, or run with {BackendVariable}=local.");
                }

                return Docker(engine, $"{BackendVariable}=docker");
            }

            case "":
            case "auto":
            {
                if (externalServersGiven)
                {
                    return new TestBackendChoice(TestBackend.External, $"{PostgresFixture.PrimaryEnvironmentVariable} and {PostgresFixture.StandbyEnvironmentVariable} are set", null);
                }

                (DockerEngine? engine, string? error) = await probeDocker();
                return engine is not null
                    ? Docker(engine, "a Docker engine answers")
                    : new TestBackendChoice(TestBackend.Local, $"no Docker engine answers: {error}", null);
            }

            default:
                throw new InvalidOperationException($"{BackendVariable}='{setting}' is none of docker, local, external (or empty for the default).");
        }
    }

    private static TestBackendChoice Docker(DockerEngine engine, string why)
    {
        engine.ConfigureTestcontainers();
        return new TestBackendChoice(TestBackend.Docker, $"{why}: {engine}; image {Image}", engine);
    }

    private static string? FindLocalImagesEnv()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OrleansLsn.sln")))
            {
                string file = Path.Combine(dir.FullName, "deploy", "local-images.env");
                return File.Exists(file) ? file : null;
            }
        }

        return null;
    }

    private static string? ReadVariable(string file, string name)
    {
        foreach (string line in File.ReadLines(file))
        {
            string trimmed = line.Trim();
            if (trimmed.StartsWith(name + "=", StringComparison.Ordinal))
            {
                return trimmed[(name.Length + 1)..].Trim().Trim('"');
            }
        }

        return null;
    }
}
