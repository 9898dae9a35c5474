using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OrleansLsn.PostgresLocal;

/// <summary>
/// A throw-away PostgreSQL primary (<c>wal_level=logical</c>) and hot standby (<c>pg_basebackup -R</c>) on free loopback
/// ports, built from the machine's own binaries in a temporary folder. When this process runs as root the servers run
/// as the <c>postgres</c> OS user. Nothing is left behind: <see cref="DisposeAsync"/> stops both and deletes the folder,
/// a detached reaper does the same if this process is killed, and every start first cleans up folders whose owning
/// process is gone.
/// </summary>
public sealed class LocalPostgresCluster : IAsyncDisposable
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(120);

    private readonly Reaper _reaper;
    private int _disposed;

    private LocalPostgresCluster(string directory, LocalPostgresServer primary, LocalPostgresServer? standby, Reaper reaper)
    {
        Directory = directory;
        Primary = primary;
        Standby = standby;
        _reaper = reaper;
    }

    /// <summary>The cluster's folder (deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>The primary.</summary>
    public LocalPostgresServer Primary { get; }

    /// <summary>The hot standby streaming from <see cref="Primary"/>; <see langword="null"/> when not requested.</summary>
    public LocalPostgresServer? Standby { get; }

    /// <summary>Settings every cluster gets; <see cref="LocalPostgresOptions.Settings"/> are appended after them.</summary>
    public static IReadOnlyDictionary<string, string> DefaultSettings { get; } = new Dictionary<string, string>
    {
        ["listen_addresses"] = "'127.0.0.1'",
        ["wal_level"] = "logical",
        ["max_wal_senders"] = "20",
        ["max_replication_slots"] = "20",
        ["max_connections"] = "300",
        ["hot_standby"] = "on",
        ["hot_standby_feedback"] = "on",
        ["wal_keep_size"] = "'512MB'",
        ["max_wal_size"] = "'2GB'",
        // Throw-away test data: durability across an OS crash is not needed, start-up and commits get faster.
        ["fsync"] = "off",
        ["full_page_writes"] = "off",
        ["wal_receiver_status_interval"] = "'1s'",
        ["log_line_prefix"] = "'%m [%p] %q%a '",
        ["log_connections"] = "off",
        ["log_disconnections"] = "off",
        ["log_replication_commands"] = "on",
    };

    /// <summary>Starts a primary and (unless disabled) a hot standby. Typically 2–4 s.</summary>
    /// <exception cref="LocalPostgresException">Binaries are missing or a server failed to start; the message has its log.</exception>
    public static async Task<LocalPostgresCluster> StartAsync(LocalPostgresOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new LocalPostgresOptions();
        string binDir = options.BinDirectory ?? PostgresBinaries.FindBinDirectory();
        await PrepareRootAsync(options.RootDirectory, cancellationToken).ConfigureAwait(false);
        await SweepAbandonedAsync(options.RootDirectory, binDir, cancellationToken).ConfigureAwait(false);

        string dir = Path.Combine(options.RootDirectory, $"{options.Name}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        await MakeDirectoryAsync(dir, cancellationToken).ConfigureAwait(false);
        OwnerMarker.Current.Write(dir);
        string pgCtl = Path.Combine(binDir, "pg_ctl");
        string primaryDir = Path.Combine(dir, "primary");
        string standbyDir = Path.Combine(dir, "standby");
        Reaper reaper = Reaper.Start(dir, pgCtl, [Path.Combine(primaryDir, "data"), Path.Combine(standbyDir, "data")]);

        LocalPostgresServer? primary = null;
        LocalPostgresServer? standby = null;
        try
        {
            primary = await CreatePrimaryAsync(options, binDir, primaryDir, cancellationToken).ConfigureAwait(false);
            if (options.WithStandby)
            {
                standby = await CreateStandbyAsync(options, binDir, primary, standbyDir, cancellationToken).ConfigureAwait(false);
            }

            return new LocalPostgresCluster(dir, primary, standby, reaper);
        }
        catch
        {
            // The reaper stops whatever did start and deletes the folder.
            reaper.Dispose();
            throw;
        }
    }

    /// <summary>Stops both servers (immediate mode: the data is thrown away) and deletes the folder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (LocalPostgresServer? server in new[] { Standby, Primary })
        {
            if (server is not null && File.Exists(Path.Combine(server.DataDirectory, "postmaster.pid")))
            {
                try
                {
                    await server.StopAsync(immediate: true, CancellationToken.None).ConfigureAwait(false);
                }
                catch (LocalPostgresException)
                {
                    // The reaper retries below.
                }
            }
        }

        _reaper.Dispose();
        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    /// <summary>Pauses WAL replay on the standby (<c>pg_wal_replay_pause()</c>) and waits until it is paused.</summary>
    public Task PauseReplayAsync(CancellationToken cancellationToken = default) =>
        ReplicaControl.PauseReplayAsync(RequireStandby().ConnectionString, cancellationToken);

    /// <summary>Resumes WAL replay on the standby (<c>pg_wal_replay_resume()</c>).</summary>
    public Task ResumeReplayAsync(CancellationToken cancellationToken = default) =>
        ReplicaControl.ResumeReplayAsync(RequireStandby().ConnectionString, cancellationToken);

    /// <summary>Stops the standby; <paramref name="immediate"/> simulates a crash.</summary>
    public Task StopStandbyAsync(bool immediate = true, CancellationToken cancellationToken = default) =>
        RequireStandby().StopAsync(immediate, cancellationToken);

    /// <summary>Starts the standby again; it reconnects to the primary and catches up.</summary>
    public Task StartStandbyAsync(CancellationToken cancellationToken = default) =>
        RequireStandby().StartAsync(cancellationToken);

    /// <summary>Waits until the standby has replayed everything the primary has flushed so far.</summary>
    public Task WaitForStandbyCatchUpAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ReplicaControl.WaitForCatchUpAsync(Primary.ConnectionString, RequireStandby().ConnectionString, timeout, cancellationToken);

    private LocalPostgresServer RequireStandby() =>
        Standby ?? throw new InvalidOperationException("This cluster was started without a standby (LocalPostgresOptions.WithStandby = false).");

    private static async Task<LocalPostgresServer> CreatePrimaryAsync(
        LocalPostgresOptions options, string binDir, string serverDir, CancellationToken cancellationToken)
    {
        await MakeDirectoryAsync(serverDir, cancellationToken).ConfigureAwait(false);
        string dataDir = Path.Combine(serverDir, "data");
        await ProcessRunner.RunAsync(
            Path.Combine(binDir, "initdb"),
            ["-D", dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-N"],
            asPostgresUser: true,
            ToolTimeout,
            cancellationToken).ConfigureAwait(false);

        var settings = new Dictionary<string, string>(DefaultSettings);
        foreach ((string key, string value) in options.Settings)
        {
            settings[key] = value;
        }

        return await StartOnFreePortAsync("primary", binDir, serverDir, settings, options.StartTimeout, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<LocalPostgresServer> CreateStandbyAsync(
        LocalPostgresOptions options, string binDir, LocalPostgresServer primary, string serverDir, CancellationToken cancellationToken)
    {
        await MakeDirectoryAsync(serverDir, cancellationToken).ConfigureAwait(false);
        await ProcessRunner.RunAsync(
            Path.Combine(binDir, "pg_basebackup"),
            ["-h", "127.0.0.1", "-p", primary.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres",
             "-D", Path.Combine(serverDir, "data"), "-R", "-X", "stream", "-c", "fast", "-N"],
            asPostgresUser: true,
            ToolTimeout,
            cancellationToken).ConfigureAwait(false);

        // postgresql.conf came from the primary; appended lines win over its port and socket folder.
        return await StartOnFreePortAsync("standby", binDir, serverDir, new Dictionary<string, string>(), options.StartTimeout, cancellationToken)
            .ConfigureAwait(false);
    }

    private static async Task<LocalPostgresServer> StartOnFreePortAsync(
        string name,
        string binDir,
        string serverDir,
        Dictionary<string, string> settings,
        TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        string confPath = Path.Combine(serverDir, "data", "postgresql.conf");
        string original = await File.ReadAllTextAsync(confPath, cancellationToken).ConfigureAwait(false);
        for (int attempt = 1; ; attempt++)
        {
            int port = FindFreePort();
            var conf = new StringBuilder(original).Append("\n# orleanslsn local cluster\n");
            foreach ((string key, string value) in settings)
            {
                conf.Append(key).Append(" = ").Append(value).Append('\n');
            }

            conf.Append(CultureInfo.InvariantCulture, $"port = {port}\n");
            conf.Append(CultureInfo.InvariantCulture, $"unix_socket_directories = '{serverDir}'\n");
            await File.WriteAllTextAsync(confPath, conf.ToString(), cancellationToken).ConfigureAwait(false);

            var server = new LocalPostgresServer(name, binDir, serverDir, port, timeout);
            try
            {
                await server.StartAsync(cancellationToken).ConfigureAwait(false);
                return server;
            }
            catch (LocalPostgresException ex) when (attempt < 3 && server.ReadLogTail().Contains("could not bind", StringComparison.Ordinal))
            {
                // Another process took the port between our probe and the server's bind; try another one.
                _ = ex;
            }
            catch (LocalPostgresException ex)
            {
                throw new LocalPostgresException($"The {name} did not start: {ex.Message}\n--- server log ---\n{server.ReadLogTail()}", ex);
            }
        }
    }

    private static int FindFreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task PrepareRootAsync(string root, CancellationToken cancellationToken)
    {
        if (!System.IO.Directory.Exists(root))
        {
            System.IO.Directory.CreateDirectory(root);
        }

        if (ProcessRunner.RunningAsRoot)
        {
            // Shared like /tmp: the postgres user must traverse it, and cluster folders are private below it.
            await ProcessRunner.RunAsync("chmod", ["1777", root], asPostgresUser: false, ToolTimeout, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task MakeDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        if (ProcessRunner.RunningAsRoot)
        {
            await ProcessRunner.RunAsync("mkdir", ["-p", "-m", "700", path], asPostgresUser: true, ToolTimeout, cancellationToken).ConfigureAwait(false);
        }
        else if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Local PostgreSQL clusters are supported on Linux and macOS.");
        }
        else
        {
            System.IO.Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Stops servers and deletes folders left by processes that died without cleaning up (e.g. a killed test run).</summary>
    private static async Task SweepAbandonedAsync(string root, string binDir, CancellationToken cancellationToken)
    {
        foreach (string dir in System.IO.Directory.GetDirectories(root))
        {
            OwnerMarker? owner = OwnerMarker.TryRead(dir);
            if (owner is { } o && o.IsAlive())
            {
                continue;
            }

            if (owner is null && System.IO.Directory.GetCreationTimeUtc(dir) > DateTime.UtcNow.AddMinutes(-2))
            {
                // Possibly a cluster being created right now by another process that has not written its marker yet.
                continue;
            }

            foreach (string server in new[] { "standby", "primary" })
            {
                string dataDir = Path.Combine(dir, server, "data");
                if (File.Exists(Path.Combine(dataDir, "postmaster.pid")))
                {
                    try
                    {
                        await ProcessRunner.RunAsync(
                            Path.Combine(binDir, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "-t", "30", "stop"],
                            asPostgresUser: true, ToolTimeout, cancellationToken).ConfigureAwait(false);
                    }
                    catch (LocalPostgresException)
                    {
                        // Not running any more (stale postmaster.pid); deleting the folder is enough.
                    }
                }
            }

            try
            {
                System.IO.Directory.Delete(dir, recursive: true);
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
