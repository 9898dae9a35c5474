using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Npgsql;
using OrleansLsn.Database;
using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Silo.Local;

/// <summary>What <see cref="LocalDeployment"/> starts.</summary>
public sealed class LocalDeploymentOptions
{
    public string Name { get; set; } = "local";

    public IReadOnlyList<string> Regions { get; set; } = ["eu-west", "us-east"];

    public int SilosPerRegion { get; set; } = 2;

    /// <summary>Mutual TLS between silos and with the client (default); off only to measure what it costs.</summary>
    public bool Tls { get; set; } = true;

    /// <summary>Slots the cluster may stream: name, publication, table.</summary>
    public IList<(string Slot, string Publication, string Table)> Slots { get; } = new List<(string, string, string)>();

    /// <summary>Extra <c>OrleansLsn:*</c> settings for every silo.</summary>
    public IDictionary<string, string> SiloSettings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// A replay delay per region (<c>recovery_min_apply_delay</c> of that region's standby): the standby applies each
    /// commit this long after the primary made it, as a replica across a WAN does. Regions not listed have none.
    /// </summary>
    public IDictionary<string, TimeSpan> ReplayDelays { get; } = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);

    /// <summary>
    /// The silo processes' garbage collector: <see langword="true"/> server GC, <see langword="false"/> workstation GC,
    /// <see langword="null"/> (default) the silo executable's own setting.
    /// </summary>
    public bool? ServerGarbageCollection { get; set; }

    /// <summary>Settings for the local PostgreSQL servers.</summary>
    public IDictionary<string, string> PostgresSettings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// PostgreSQL asks for a password over TCP (default), a random one per deployment
    /// (<see cref="LocalPostgresOptions.PasswordAuthentication"/>); silos and the client get their connection strings
    /// through <c>…ConnectionStringFile</c> keys either way.
    /// </summary>
    public bool PasswordAuthentication { get; set; } = true;

    /// <summary>
    /// SQL run on the primary as its superuser after it starts and before the database roles are applied, e.g. the
    /// tables the <see cref="Slots"/> publish (their publications are created with the roles, by the tables' owner, so
    /// the silos need no right to create them).
    /// </summary>
    public IList<string> SetupSql { get; } = new List<string>();

    /// <summary>
    /// Least-privilege roles (default): the membership schema and <see cref="OrleansLsn.Database.DatabaseRoles"/>' silo,
    /// client and tracker roles are applied as the superuser, each with a random password; silos connect as the silo
    /// role (primary, membership) and the tracker role (replicas), the client as the client role.
    /// <see langword="false"/>: everyone connects as the superuser.
    /// </summary>
    public bool DatabaseRoles { get; set; } = true;

    /// <summary>
    /// Leave the deployment's folder (silo logs, certificates and keys, secret files) when disposed, for inspection; the
    /// caller deletes it. Default <see langword="false"/>: everything is removed.
    /// </summary>
    public bool KeepFolder { get; set; }
}

/// <summary>
/// A whole OrleansLsn cluster on this machine: a local primary and one hot standby per region, a throw-away CA with
/// certificates (TLS stays on), and silo processes of this executable (by default two per region) forming one cluster
/// through PostgreSQL membership. PostgreSQL asks for a password over TCP (a random one per deployment) and the silos and
/// the client get their connection strings through files (<c>OrleansLsn:…ConnectionStringFile</c>, mode 600 in the
/// deployment's folder), never on a command line or in the environment. Disposing stops the silos gracefully, then
/// PostgreSQL, and removes every folder (but the deployment's own with <see cref="LocalDeploymentOptions.KeepFolder"/>);
/// silos also stop by themselves if this process dies.
/// </summary>
public sealed class LocalDeployment : IAsyncDisposable
{
    /// <summary>The folder, below <see cref="Folder"/>, with the files that hold connection strings (mode 700, files 600).</summary>
    public const string SecretsFolderName = "secrets";

    /// <summary>A kept folder (<see cref="LocalDeploymentOptions.KeepFolder"/>) holds this file; sweeps leave it alone.</summary>
    private const string KeptMarker = "kept";

    private readonly List<SiloProcess> _silos = new();
    private readonly LocalDeploymentOptions _options;
    private readonly Dictionary<string, string> _trackerConnectionStrings = new(StringComparer.Ordinal);
    private int _next;

    private LocalDeployment(LocalDeploymentOptions options, LocalPostgresCluster postgres, DevCertificates certificates, string folder)
    {
        _options = options;
        Postgres = postgres;
        Certificates = certificates;
        Folder = folder;
    }

    public const string ClusterId = "orleanslsn-local";

    public LocalPostgresCluster Postgres { get; }

    public DevCertificates Certificates { get; }

    public string Folder { get; }

    /// <summary>
    /// The primary's <c>server_version</c> (e.g. <c>17.10</c>, or <c>15.18 (Debian 15.18-0+deb12u1)</c>): the binaries
    /// picked by <c>ORLEANSLSN_PG_VERSION</c> / <c>ORLEANSLSN_PG_BIN</c>, else the machine's.
    /// </summary>
    public string ServerVersion { get; private set; } = "";

    public IReadOnlyList<SiloProcess> Silos => _silos;

    /// <summary>The membership database's connection string as the superuser (a secret when passwords are on: never print it).</summary>
    public string MembershipConnectionString => Postgres.Primary.ConnectionString;

    /// <summary>The primary as the silo role (membership rows, <c>REPLICATION</c>); the superuser's without <see cref="LocalDeploymentOptions.DatabaseRoles"/>.</summary>
    public string SiloConnectionString { get; private set; } = "";

    /// <summary>The membership database as the client role (the gateway query only); the superuser's without <see cref="LocalDeploymentOptions.DatabaseRoles"/>.</summary>
    public string ClientConnectionString { get; private set; } = "";

    /// <summary>The file holding <see cref="SiloConnectionString"/>, given to the silos.</summary>
    public string SiloConnectionStringFile => SecretPath("silo.connection");

    /// <summary>The file holding <see cref="ClientConnectionString"/>, given to clients as their membership connection string.</summary>
    public string ClientConnectionStringFile => SecretPath("client.connection");

    /// <summary>The file holding the password of the client's PFX (<see cref="DevCertificates.PfxPath"/> of <c>client</c>).</summary>
    public string ClientPfxPasswordFile => SecretPath("client-pfx.password");

    /// <summary>The file holding the primary's connection string (membership lives there too).</summary>
    public string PrimaryConnectionStringFile => SecretPath("primary.connection");

    /// <summary>
    /// Settings a client needs (the <c>OrleansLsn</c> section): cluster, membership (as a file holding its connection
    /// string, so that printing these settings prints no password) and its TLS certificate.
    /// </summary>
    public IReadOnlyDictionary<string, string?> ClientSettings => new Dictionary<string, string?>
    {
        ["OrleansLsn:ClusterId"] = ClusterId,
        ["OrleansLsn:ServiceId"] = ClusterId,
        ["OrleansLsn:MembershipConnectionStringFile"] = ClientConnectionStringFile,
        ["OrleansLsn:Tls:Mode"] = _options.Tls ? "Required" : "Disabled",
        // The client's certificate as a PFX whose password is in a file, as an application would get both from its secrets.
        ["OrleansLsn:Tls:CertificatePath"] = Certificates.PfxPath("client"),
        ["OrleansLsn:Tls:PasswordFile"] = ClientPfxPasswordFile,
        ["OrleansLsn:Tls:CaCertificatePath"] = Certificates.CaCertificatePath,
    };

    /// <summary>The connection string of <paramref name="region"/>'s replica as the superuser (a secret when passwords are on).</summary>
    public string ReplicaOf(string region) => Postgres.GetStandby(region).ConnectionString;

    /// <summary>The connection string of <paramref name="region"/>'s replica as the tracker role (what the silos get); the superuser's without <see cref="LocalDeploymentOptions.DatabaseRoles"/>.</summary>
    public string TrackerConnectionStringOf(string region) => _trackerConnectionStrings.TryGetValue(region, out string? value) ? value : ReplicaOf(region);

    /// <summary>
    /// The file holding the connection string an application uses to read <paramref name="region"/>'s replica: the
    /// superuser, which owns the tables (the trackers' role may read none).
    /// </summary>
    public string ApplicationReplicaConnectionStringFileOf(string region) =>
        SecretPath($"app-replica-{Postgres.GetStandby(region).Name}.connection");

    /// <summary>The file holding <see cref="TrackerConnectionStringOf"/> for <paramref name="region"/>, given to that region's silos.</summary>
    public string ReplicaConnectionStringFileOf(string region) =>
        SecretPath($"replica-{Postgres.GetStandby(region).Name}.connection");

    /// <summary>
    /// What a web application reading in <paramref name="region"/> needs (OrleansLsn.AspNetCore's
    /// <c>AddReadYourWrites</c>): <see cref="ClientSettings"/> and <c>OrleansLsn:Reads</c>, with the application's
    /// connection strings as files (<c>PrimaryFile</c>, <c>ReplicaFiles</c>), so these settings hold no password.
    /// </summary>
    public Dictionary<string, string?> ReadRoutingSettings(string region)
    {
        const string S = Client.ReadRoutingOptions.Section;
        var settings = new Dictionary<string, string?>(ClientSettings)
        {
            [$"{S}:Region"] = region,
            [$"{S}:PrimaryFile"] = PrimaryConnectionStringFile,
        };
        foreach (string r in _options.Regions)
        {
            settings[$"{S}:ReplicaFiles:{r}"] = ApplicationReplicaConnectionStringFileOf(r);
        }

        return settings;
    }

    public static async Task<LocalDeployment> StartAsync(LocalDeploymentOptions options, Action<string> progress, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        progress($"starting a local PostgreSQL primary and one hot standby per region ({string.Join(", ", options.Regions)})...");
        var pgOptions = new LocalPostgresOptions
        {
            Name = options.Name,
            StandbyNames = [.. options.Regions],
            PasswordAuthentication = options.PasswordAuthentication,
        };
        foreach ((string key, string value) in options.PostgresSettings)
        {
            pgOptions.Settings[key] = value;
        }

        foreach ((string region, TimeSpan delay) in options.ReplayDelays)
        {
            if (delay > TimeSpan.Zero)
            {
                pgOptions.StandbySettings[region] = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["recovery_min_apply_delay"] = string.Create(CultureInfo.InvariantCulture, $"'{(long)delay.TotalMilliseconds}ms'"),
                };
            }
        }

        LocalPostgresCluster postgres = await LocalPostgresCluster.StartAsync(pgOptions, cancellationToken).ConfigureAwait(false);
        progress(string.Create(CultureInfo.InvariantCulture, $"  primary 127.0.0.1:{postgres.Primary.Port}, standbys {string.Join(", ", postgres.Standbys.Select(s => $"{s.Name} 127.0.0.1:{s.Port}{DescribeDelay(options, s.Name)}"))}; {sw.Elapsed.TotalSeconds:0.0} s"));
        string root = Path.Combine(Path.GetTempPath(), "orleanslsn-deploy");
        SweepAbandoned(root);
        string folder = Path.Combine(root, $"{options.Name}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(folder);
        DevCertificates certificates = DevCertificates.Create(Path.Combine(folder, "certs"), "silo", "client");
        progress("  made a throw-away CA and certificates for the silos and the client (mutual TLS on)");
        var deployment = new LocalDeployment(options, postgres, certificates, folder);
        try
        {
            deployment.ServerVersion = await ReadServerVersionAsync(postgres.Primary.ConnectionString, cancellationToken).ConfigureAwait(false);
            progress($"  PostgreSQL {deployment.ServerVersion} ({DescribeBinaries()})");
            await deployment.PrepareDatabaseAsync(cancellationToken).ConfigureAwait(false);
            if (options.DatabaseRoles)
            {
                progress($"  least-privilege roles: silos connect as {DatabaseRolesOptions.DefaultSiloRole} (membership rows, REPLICATION) and {DatabaseRolesOptions.DefaultTrackerRole} (replicas, no table rights), the client as {DatabaseRolesOptions.DefaultClientRole} (the gateway query only); random passwords");
            }

            deployment.WriteSecretFiles();
            progress(options.PasswordAuthentication
                ? "  PostgreSQL asks for a password over TCP (a random one for this run); silos and the client read their connection strings from files (mode 600)"
                : "  PostgreSQL trusts every local connection (no password); silos and the client read their connection strings from files");
            int count = options.Regions.Count * options.SilosPerRegion;
            progress($"starting {count} silo processes ({options.SilosPerRegion} per region), membership in PostgreSQL...");
            var started = new List<SiloProcess>();
            for (int i = 0; i < options.SilosPerRegion; i++)
            {
                foreach (string region in options.Regions)
                {
                    started.Add(deployment.StartSilo(region));
                }
            }

            foreach (SiloProcess silo in started)
            {
                await silo.WaitHealthyAsync(TimeSpan.FromSeconds(90), cancellationToken).ConfigureAwait(false);
                progress(string.Create(CultureInfo.InvariantCulture, $"  {silo.Name}: pid {silo.Pid}, silo port {silo.SiloPort}, gateway {silo.GatewayPort}, health http://127.0.0.1:{silo.HttpPort}/healthz — active ({sw.Elapsed.TotalSeconds:0.0} s)"));
            }

            return deployment;
        }
        catch
        {
            await deployment.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static string DescribeDelay(LocalDeploymentOptions options, string region) =>
        options.ReplayDelays.TryGetValue(region, out TimeSpan delay) && delay > TimeSpan.Zero
            ? string.Create(CultureInfo.InvariantCulture, $" (replay delayed {delay.TotalMilliseconds:0} ms)")
            : "";

    private static async Task<string> ReadServerVersionAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SHOW server_version", connection);
        return (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static string DescribeBinaries()
    {
        string? bin = Environment.GetEnvironmentVariable(PostgresBinaries.BinDirEnvironmentVariable);
        string? version = Environment.GetEnvironmentVariable(PostgresBinaries.VersionEnvironmentVariable);
        return !string.IsNullOrWhiteSpace(bin) ? $"binaries from {PostgresBinaries.BinDirEnvironmentVariable}"
            : !string.IsNullOrWhiteSpace(version) ? $"{PostgresBinaries.VersionEnvironmentVariable}={version.Trim()}"
            : $"the machine's binaries; {PostgresBinaries.VersionEnvironmentVariable}=15|16|17|18 picks another version";
    }

    /// <summary>
    /// Starts one more silo process in <paramref name="region"/> (not waiting for it); <paramref name="overrides"/>
    /// replace or add <c>OrleansLsn:*</c> settings of this silo only (another certificate, say).
    /// </summary>
    public SiloProcess StartSilo(string region, IReadOnlyDictionary<string, string>? overrides = null)
    {
        int n = Interlocked.Increment(ref _next);
        int[] ports = FreePorts(3);
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["OrleansLsn:ClusterId"] = ClusterId,
            ["OrleansLsn:ServiceId"] = ClusterId,
            ["OrleansLsn:Region"] = region,
            // Connection strings through files, never on the command line or in the environment (ps shows both).
            ["OrleansLsn:PrimaryConnectionStringFile"] = SiloConnectionStringFile,
            ["OrleansLsn:MembershipConnectionStringFile"] = SiloConnectionStringFile,
            ["OrleansLsn:ReplicaConnectionStringFile"] = ReplicaConnectionStringFileOf(region),
            ["OrleansLsn:AdvertisedAddress"] = "127.0.0.1",
            ["OrleansLsn:SiloPort"] = ports[0].ToString(CultureInfo.InvariantCulture),
            ["OrleansLsn:GatewayPort"] = ports[1].ToString(CultureInfo.InvariantCulture),
            ["OrleansLsn:HttpPort"] = ports[2].ToString(CultureInfo.InvariantCulture),
            ["OrleansLsn:Tls:Mode"] = _options.Tls ? "Required" : "Disabled",
            ["OrleansLsn:Tls:CertificatePath"] = Certificates.CertificatePath("silo"),
            ["OrleansLsn:Tls:KeyPath"] = Certificates.KeyPath("silo"),
            ["OrleansLsn:Tls:CaCertificatePath"] = Certificates.CaCertificatePath,
        };
        for (int i = 0; i < _options.Slots.Count; i++)
        {
            (string slot, string publication, string table) = _options.Slots[i];
            settings[$"OrleansLsn:Replication:Slots:{i}:Name"] = slot;
            settings[$"OrleansLsn:Replication:Slots:{i}:Publication"] = publication;
            settings[$"OrleansLsn:Replication:Slots:{i}:Tables:0"] = table;
        }

        foreach ((string key, string value) in _options.SiloSettings)
        {
            settings[key] = value;
        }

        foreach ((string key, string value) in overrides ?? new Dictionary<string, string>())
        {
            settings[key] = value;
        }

        SiloProcess silo = SiloProcess.Start($"silo{n}-{region}", region, settings, Folder, _options.ServerGarbageCollection);
        lock (_silos)
        {
            _silos.Add(silo);
        }

        return silo;
    }

    /// <summary>The deployment's options.</summary>
    public LocalDeploymentOptions Options => _options;

    public SiloProcess? SiloAt(string siloAddress) => _silos.FirstOrDefault(s => siloAddress.StartsWith(s.AddressPrefix, StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        SiloProcess[] silos;
        lock (_silos)
        {
            silos = [.. _silos];
            _silos.Clear();
        }

        await Task.WhenAll(silos.Select(s => s.DisposeAsync().AsTask())).ConfigureAwait(false);
        await Postgres.DisposeAsync().ConfigureAwait(false);
        Certificates.Dispose();
        if (_options.KeepFolder)
        {
            await File.WriteAllTextAsync(Path.Combine(Folder, KeptMarker), "kept for inspection; delete this folder when done\n", CancellationToken.None).ConfigureAwait(false);
            return;
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Removes folders of deployments whose process is gone (killed before it could clean up).</summary>
    private static void SweepAbandoned(string root)
    {
        if (!Directory.Exists(root))
        {
            return;
        }

        foreach (string dir in Directory.GetDirectories(root))
        {
            string[] parts = Path.GetFileName(dir).Split('-');
            if (parts.Length >= 3 && int.TryParse(parts[^2], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}") && !File.Exists(Path.Combine(dir, KeptMarker)))
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
    }

    /// <summary>
    /// Runs <see cref="LocalDeploymentOptions.SetupSql"/> as the superuser, then (with
    /// <see cref="LocalDeploymentOptions.DatabaseRoles"/>) the membership schema and the roles with random passwords, and
    /// waits until every standby has replayed them (the trackers log in there).
    /// </summary>
    private async Task PrepareDatabaseAsync(CancellationToken cancellationToken)
    {
        string superuser = Postgres.Primary.ConnectionString;
        await using (var connection = new NpgsqlConnection(superuser))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            foreach (string sql in _options.SetupSql)
            {
                await using var command = new NpgsqlCommand(sql, connection);
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        if (!_options.DatabaseRoles)
        {
            SiloConnectionString = superuser;
            ClientConnectionString = superuser;
            return;
        }

        string siloPassword = RandomNumberGenerator.GetHexString(32, lowercase: true);
        string clientPassword = RandomNumberGenerator.GetHexString(32, lowercase: true);
        string trackerPassword = RandomNumberGenerator.GetHexString(32, lowercase: true);
        var roles = new DatabaseRolesOptions
        {
            SiloPasswordVerifier = ScramVerifier.Compute(siloPassword),
            ClientPasswordVerifier = ScramVerifier.Compute(clientPassword),
            TrackerPasswordVerifier = ScramVerifier.Compute(trackerPassword),
        };
        foreach (IGrouping<string, (string Slot, string Publication, string Table)> publication in _options.Slots.GroupBy(s => s.Publication, StringComparer.Ordinal))
        {
            roles.Publications.Add(new DatabasePublication(publication.Key, [.. publication.Select(s => s.Table).Distinct(StringComparer.Ordinal)]));
        }

        await OrleansLsn.Database.DatabaseRoles.ApplyAsync(superuser, roles, null, cancellationToken).ConfigureAwait(false);
        SiloConnectionString = As(superuser, roles.SiloRole, siloPassword);
        ClientConnectionString = As(superuser, roles.ClientRole, clientPassword);
        foreach (LocalPostgresServer standby in Postgres.Standbys)
        {
            await ReplicaControl.WaitForCatchUpAsync(superuser, standby.ConnectionString, TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
            _trackerConnectionStrings[standby.Name] = As(standby.ConnectionString, roles.TrackerRole, trackerPassword);
        }

        static string As(string connectionString, string role, string password) =>
            new NpgsqlConnectionStringBuilder(connectionString) { Username = role, Password = password }.ConnectionString;
    }

    private void WriteSecretFiles()
    {
        WriteSecretFile(PrimaryConnectionStringFile, Postgres.Primary.ConnectionString);
        WriteSecretFile(SiloConnectionStringFile, SiloConnectionString);
        WriteSecretFile(ClientConnectionStringFile, ClientConnectionString);
        foreach (string region in _options.Regions)
        {
            WriteSecretFile(ReplicaConnectionStringFileOf(region), TrackerConnectionStringOf(region));
            WriteSecretFile(ApplicationReplicaConnectionStringFileOf(region), ReplicaOf(region));
        }

        string pfxPassword = RandomNumberGenerator.GetHexString(32, lowercase: true);
        WriteSecretFile(ClientPfxPasswordFile, pfxPassword + "\n");
        Certificates.ExportPfx("client", pfxPassword);
    }

    /// <summary>
    /// The one place that writes secrets to disk: <paramref name="content"/> into <paramref name="path"/> in the
    /// deployment's <see cref="SecretsFolderName"/> folder, readable by its owner only (folder 700, file 600), removed
    /// with the folder.
    /// </summary>
    private void WriteSecretFile(string path, string content)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Local deployments are supported on Linux and macOS.");
        }

        Directory.CreateDirectory(Path.Combine(Folder, SecretsFolderName), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var mode = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite };
        using var writer = new StreamWriter(path, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false), mode);
        writer.Write(content);
    }

    private string SecretPath(string name) => Path.Combine(Folder, SecretsFolderName, name);

    private static int[] FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (TcpListener listener in listeners)
            {
                listener.Stop();
            }
        }
    }
}
