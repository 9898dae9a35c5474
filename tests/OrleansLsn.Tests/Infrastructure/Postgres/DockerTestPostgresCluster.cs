using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Docker.DotNet;
using Docker.DotNet.Models;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Networks;
using Npgsql;
using OrleansLsn.PostgresLocal;
using Testcontainers.PostgreSql;
using TcWait = DotNet.Testcontainers.Builders.Wait;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// The Docker backend: a primary from <c>Testcontainers.PostgreSql</c> (the official image's contract, with
/// <c>wal_level=logical</c> and the local cluster's other settings as <c>postgres -c</c> arguments) and one hot standby
/// per name, made inside the cluster's own Docker network by <c>pg_basebackup -R</c> from the primary (the compose
/// file's <c>deploy/compose/replica-entrypoint.sh</c>), or, for an image labelled
/// <see cref="StandbyCopyLabel"/><c>=low-level</c> (no <c>pg_basebackup</c> for its server: <c>deploy/local-images.sh --pg N</c>),
/// by a low-level base backup copied from container to container (<see cref="DockerBaseBackup"/>). Every server is published on a fixed 127.0.0.1 port, so its
/// connection string survives a stop and start. Stop and start are <c>docker stop</c>/<c>docker kill</c> and
/// <c>docker start</c>; everything carries <see cref="DockerLeftovers"/>' labels.
/// </summary>
public sealed partial class DockerTestPostgresCluster : ITestPostgresCluster
{
    internal const string Password = "orleanslsn-tests";
    private const string PrimaryAlias = "primary";
    private const int PostgresPort = 5432;
    private const string ReplicaScriptPath = "/usr/local/bin/replica-entrypoint.sh";

    /// <summary>The image label that says how standbys are made: <c>low-level</c>, or <c>pg_basebackup</c> when absent.</summary>
    internal const string StandbyCopyLabel = "org.orleanslsn.postgres.standby-copy";
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    // Settings that only make sense for a server on the host (the container listens on its own network, port 5432).
    private static readonly HashSet<string> HostOnlySettings = new(StringComparer.Ordinal) { "listen_addresses", "port", "unix_socket_directories" };

    private readonly DockerClient _docker;
    private readonly INetwork _network;
    private readonly string _id;
    private readonly Server _primary;
    private readonly IReadOnlyList<Server> _standbys;
    private int _disposed;

    private DockerTestPostgresCluster(DockerClient docker, INetwork network, string id, Server primary, IReadOnlyList<Server> standbys)
    {
        _docker = docker;
        _network = network;
        _id = id;
        _primary = primary;
        _standbys = standbys;
    }

    public TestBackend Backend => TestBackend.Docker;

    public ITestPostgresServer Primary => _primary;

    public IReadOnlyList<ITestPostgresServer> Standbys => _standbys;

    /// <summary>The cluster's id (its <see cref="DockerLeftovers.ClusterLabel"/> and part of its resources' names).</summary>
    public string Id => _id;

    /// <summary>
    /// Starts the primary, then every standby (at once with <c>pg_basebackup</c>, one after the other with a low-level
    /// base backup); the first failure removes whatever started.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// A local image (<see cref="TestPostgresImage.IsLocalBuild"/>) is missing (the message names the command that
    /// builds it), or the primary runs another major version than <see cref="TestPostgresImage.Version"/>.
    /// </exception>
    public static async Task<DockerTestPostgresCluster> StartAsync(
        TestPostgresClusterOptions options, DockerEngine engine, TestPostgresImage image, CancellationToken cancellationToken)
    {
        IReadOnlyList<string> names = ValidateStandbyNames(options.StandbyNames);
        DockerClient docker = engine.CreateClient();
        string id = $"{options.Name}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}";
        IReadOnlyDictionary<string, string> labels = DockerLeftovers.Labels(id);
        INetwork network = new NetworkBuilder().WithName($"orleanslsn-test-{id}").WithLabel(labels).Build();
        var started = new List<Server>();
        try
        {
            bool lowLevel = await UsesLowLevelCopyAsync(docker, image, cancellationToken);
            await DockerLeftovers.SweepAsync(docker, cancellationToken);
            await network.CreateAsync(cancellationToken);
            string[] settings = SettingArguments(options.Settings);
            Server primary = await StartServerAsync(
                PrimaryAlias, port => BuildPrimary(image.Name, network, labels, settings, port), fill: null, docker, started, cancellationToken);
            await CheckVersionAsync(primary, image, cancellationToken);
            Server[] standbys;
            if (lowLevel)
            {
                // One backup at a time: the primary's data folder is read while it runs, best while nothing else churns it.
                standbys = new Server[names.Count];
                for (int i = 0; i < names.Count; i++)
                {
                    string name = names[i];
                    standbys[i] = await StartServerAsync(
                        name,
                        port => BuildStandby(image.Name, network, labels, settings, name, port, external: true),
                        (standby, token) => DockerBaseBackup.CopyAsync(
                            docker, primary.ConnectionString, primary.Container.Id, standby.Container.Id, $"orleanslsn {name}", token),
                        docker,
                        started,
                        cancellationToken);
                }
            }
            else
            {
                standbys = await Task.WhenAll(names.Select(name => StartServerAsync(
                    name, port => BuildStandby(image.Name, network, labels, settings, name, port, external: false), fill: null, docker, started, cancellationToken)));
            }

            return new DockerTestPostgresCluster(docker, network, id, primary, standbys);
        }
        catch
        {
            foreach (Server server in started)
            {
                await server.Container.DisposeAsync();
            }

            await network.DisposeAsync();
            docker.Dispose();
            throw;
        }
    }

    /// <summary>Whether the image asks for low-level base backups (<see cref="StandbyCopyLabel"/>); a missing local image is an error.</summary>
    private static async Task<bool> UsesLowLevelCopyAsync(DockerClient docker, TestPostgresImage image, CancellationToken cancellationToken)
    {
        try
        {
            ImageInspectResponse inspect = await docker.Images.InspectImageAsync(image.Name, cancellationToken);
            return inspect.Config?.Labels is { } imageLabels
                && imageLabels.TryGetValue(StandbyCopyLabel, out string? copy)
                && string.Equals(copy, "low-level", StringComparison.Ordinal);
        }
        catch (DockerImageNotFoundException) when (image.IsLocalBuild)
        {
            throw new InvalidOperationException(
                $"The Docker backend's image {image.Name} (from {image.Source}) is not on this Docker engine. Build it with `{image.BuildCommand}`.");
        }
        catch (DockerImageNotFoundException)
        {
            // Not a local build: Testcontainers pulls it.
            return false;
        }
    }

    /// <summary>With a version asked for (<c>ORLEANSLSN_PG_VERSION</c>), the primary must run it: never another one silently.</summary>
    private static async Task CheckVersionAsync(Server primary, TestPostgresImage image, CancellationToken cancellationToken)
    {
        if (image.Version is not { } asked)
        {
            return;
        }

        await using var conn = new NpgsqlConnection(primary.ConnectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand("select current_setting('server_version_num')::int / 10000", conn);
        int running = (int)(await cmd.ExecuteScalarAsync(cancellationToken))!;
        if (running != asked)
        {
            throw new InvalidOperationException(
                $"{PostgresBinaries.VersionEnvironmentVariable}={asked}, but the image {image.Name} (from {image.Source}) runs PostgreSQL {running}. " +
                $"Build the image of {asked} with `{image.BuildCommand}`" +
                (image.Source == TestPostgres.ImageVariable ? $" or unset {TestPostgres.ImageVariable}." : "."));
        }
    }

    public ITestPostgresServer GetStandby(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _standbys.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal))
            ?? throw new ArgumentException(
                $"This cluster has no standby named '{name}'; " +
                (_standbys.Count == 0 ? "it has no standby." : "its standbys are " + string.Join(", ", _standbys.Select(s => $"'{s.Name}'")) + "."),
                nameof(name));
    }

    public Task<IReadOnlyList<string>> FindLeftoversAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            return DockerLeftovers.FindAsync(_docker, _id, cancellationToken);
        }

        // Disposed: ask with a client of its own (ours is gone with the cluster).
        return FindWithNewClientAsync(cancellationToken);
    }

    /// <summary>Removes the containers (with their volumes), then the network.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (Server server in _standbys.Append(_primary))
        {
            await server.Container.DisposeAsync();
        }

        await _network.DisposeAsync();
        _docker.Dispose();
    }

    private async Task<IReadOnlyList<string>> FindWithNewClientAsync(CancellationToken cancellationToken)
    {
        (DockerEngine? engine, string? error) = await DockerEngine.ProbeAsync(TimeSpan.FromSeconds(5));
        if (engine is null)
        {
            throw new InvalidOperationException($"The Docker engine does not answer: {error}");
        }

        using DockerClient docker = engine.CreateClient();
        return await DockerLeftovers.FindAsync(docker, _id, cancellationToken);
    }

    private static IContainer BuildPrimary(string image, INetwork network, IReadOnlyDictionary<string, string> labels, string[] settings, int hostPort) =>
        new PostgreSqlBuilder(image)
            .WithUsername("postgres")
            .WithPassword(Password)
            .WithDatabase("postgres")
            .WithNetwork(network)
            .WithNetworkAliases(PrimaryAlias)
            .WithLabel(labels)
            // The official image's pg_hba.conf has 'host all all all scram-sha-256', which no replication connection matches.
            .WithResourceMapping(Encoding.UTF8.GetBytes(ReplicationHbaScript), "/docker-entrypoint-initdb.d/10-replication.sh")
            .WithCommand(settings)
            .WithCreateParameterModifier(p => BindLoopback(p, hostPort))
            .WithWaitStrategy(TcWait.ForUnixContainer().UntilCommandIsCompleted("pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-q"))
            .Build();

    private static IContainer BuildStandby(
        string image, INetwork network, IReadOnlyDictionary<string, string> labels, string[] settings, string name, int hostPort, bool external)
    {
        ContainerBuilder builder = new ContainerBuilder(image)
            .WithNetwork(network)
            .WithNetworkAliases(name)
            .WithLabel(labels)
            .WithEnvironment("PRIMARY_HOST", PrimaryAlias)
            .WithEnvironment("REPLICA_NAME", name)
            .WithEnvironment("PGPASSWORD", Password)
            .WithResourceMapping(File.ReadAllBytes(ReplicaScriptFile), ReplicaScriptPath)
            .WithEntrypoint("bash", ReplicaScriptPath)
            // The primary's settings came from its command line, not its postgresql.conf: a standby needs at least its
            // max_connections, max_wal_senders, ... and gets the same list.
            .WithCommand(settings);
        if (external)
        {
            // The entry point waits for DockerBaseBackup's copy as root (it hands the folder to postgres, then runs the
            // server as postgres): the container is ready to fill once it runs.
            return builder
                .WithEnvironment("BASE_BACKUP", "external")
                .WithCreateParameterModifier(p => BindLoopback(p, hostPort))
                .WithWaitStrategy(TcWait.ForUnixContainer())
                .Build();
        }

        return builder
            .WithCreateParameterModifier(p =>
            {
                p.User = "postgres";
                BindLoopback(p, hostPort);
            })
            .WithWaitStrategy(TcWait.ForUnixContainer().UntilCommandIsCompleted("pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-q"))
            .Build();
    }

    /// <summary>
    /// Creates and starts one server on a free loopback port (<paramref name="fill"/>, when given, runs once the container
    /// runs and before the server is waited for); another process taking the port between the probe and Docker's bind
    /// gets a second try on another port.
    /// </summary>
    private static async Task<Server> StartServerAsync(
        string name,
        Func<int, IContainer> build,
        Func<Server, CancellationToken, Task>? fill,
        DockerClient docker,
        List<Server> started,
        CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            int port = FindFreePort();
            IContainer container = build(port);
            var server = new Server(name, container, port, docker);
            lock (started)
            {
                started.Add(server);
            }

            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(ReadyTimeout);
                await container.StartAsync(deadline.Token);
                if (fill is not null)
                {
                    await fill(server, deadline.Token);
                }

                await server.WaitReadyAsync(cancellationToken);
                return server;
            }
            catch (Exception e) when (attempt < 3 && e.Message.Contains("port is already allocated", StringComparison.Ordinal))
            {
                lock (started)
                {
                    started.Remove(server);
                }

                await container.DisposeAsync();
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                string log = await server.ReadLogTailAsync();
                throw new InvalidOperationException($"The {name} container ({container.Image.FullName}) did not become ready: {e.Message}\n--- container log ---\n{log}", e);
            }
        }
    }

    private static void BindLoopback(CreateContainerParameters parameters, int hostPort)
    {
        string key = $"{PostgresPort}/tcp";
        parameters.ExposedPorts ??= new Dictionary<string, EmptyStruct>();
        parameters.ExposedPorts[key] = default;
        parameters.HostConfig ??= new HostConfig();
        parameters.HostConfig.PortBindings = new Dictionary<string, IList<PortBinding>>
        {
            [key] = [new PortBinding { HostIP = "127.0.0.1", HostPort = hostPort.ToString(CultureInfo.InvariantCulture) }],
        };
    }

    /// <summary><c>-c name=value</c> for the local cluster's defaults and <paramref name="overrides"/>, quotes of postgresql.conf syntax removed.</summary>
    internal static string[] SettingArguments(IDictionary<string, string> overrides)
    {
        var settings = new Dictionary<string, string>(LocalPostgresCluster.DefaultSettings, StringComparer.Ordinal)
        {
            // Testcontainers.PostgreSql starts the server with synchronous_commit=off (and fsync=off,
            // full_page_writes=off) for speed. Off, a commit returns before its WAL is flushed, so the flush LSN lags the
            // commit and "caught up to the primary's flush LSN" no longer means "has the last commit": the local
            // cluster's behaviour (on) is the one the tests are written for.
            ["synchronous_commit"] = "on",
        };
        foreach ((string key, string value) in overrides)
        {
            settings[key] = value;
        }

        var args = new List<string>();
        foreach ((string key, string value) in settings)
        {
            if (HostOnlySettings.Contains(key))
            {
                continue;
            }

            string plain = value.Length >= 2 && value[0] == '\'' && value[^1] == '\'' ? value[1..^1].Replace("''", "'", StringComparison.Ordinal) : value;
            args.Add("-c");
            args.Add($"{key}={plain}");
        }

        return [.. args];
    }

    private static IReadOnlyList<string> ValidateStandbyNames(IList<string> names)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string name in names)
        {
            if (!StandbyName().IsMatch(name) || name == PrimaryAlias || !seen.Add(name))
            {
                throw new ArgumentException(
                    $"StandbyNames: '{name}' is not a valid standby name ([a-z0-9_-], 1 to 32 characters, not 'primary', each once).", nameof(names));
            }
        }

        return [.. names];
    }

    private static int FindFreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string ReplicaScriptFile => Path.Combine(AppContext.BaseDirectory, "Infrastructure", "Postgres", "replica-entrypoint.sh");

    private const string ReplicationHbaScript = """
        #!/usr/bin/env bash
        # Replication connections (pg_basebackup, walreceivers) from the cluster's Docker network.
        echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
        """;

    [GeneratedRegex("^[a-z0-9_-]{1,32}$")]
    private static partial Regex StandbyName();

    private sealed class Server(string name, IContainer container, int hostPort, DockerClient docker) : ITestPostgresServer
    {
        private volatile bool _running;

        public IContainer Container => container;

        public string Name => name;

        public string ConnectionString { get; } = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = hostPort,
            Username = "postgres",
            Password = Password,
            Database = "postgres",
            ApplicationName = "orleanslsn",
            Timeout = 10,
        }.ConnectionString;

        public bool IsRunning => _running;

        public async Task StopAsync(bool immediate, CancellationToken cancellationToken)
        {
            _running = false;
            if (immediate)
            {
                // SIGKILL of the postmaster (PID 1): the kernel ends every process of the container at once.
                await docker.Containers.KillContainerAsync(container.Id, new ContainerKillParameters { Signal = "KILL" }, cancellationToken);
            }
            else
            {
                // The image's stop signal (SIGINT: fast shutdown), SIGKILL after 30 s.
                await docker.Containers.StopContainerAsync(container.Id, new ContainerStopParameters { WaitBeforeKillSeconds = 30 }, cancellationToken);
            }

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(ReadyTimeout);
            while ((await docker.Containers.InspectContainerAsync(container.Id, deadline.Token)).State?.Running == true)
            {
                await Task.Delay(20, deadline.Token);
            }
        }

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await docker.Containers.StartContainerAsync(container.Id, new ContainerStartParameters(), cancellationToken);
            await WaitReadyAsync(cancellationToken);
        }

        /// <summary>Waits until the server answers a query over its published port (the container may still be in crash recovery).</summary>
        public async Task WaitReadyAsync(CancellationToken cancellationToken)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(ReadyTimeout);
            Exception? last = null;
            var builder = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 5 };
            while (true)
            {
                try
                {
                    await using var conn = new NpgsqlConnection(builder.ConnectionString);
                    await conn.OpenAsync(deadline.Token);
                    await using var cmd = new NpgsqlCommand("select 1", conn);
                    await cmd.ExecuteScalarAsync(deadline.Token);
                    _running = true;
                    return;
                }
                catch (Exception e) when (e is NpgsqlException or IOException or SocketException && !deadline.IsCancellationRequested)
                {
                    last = e;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"{Name} did not accept connections within {ReadyTimeout.TotalSeconds:0} s (last error: {last?.Message}).\n{await this.ReadLogTailAsync()}");
                }

                try
                {
                    await Task.Delay(50, deadline.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"{Name} did not accept connections within {ReadyTimeout.TotalSeconds:0} s (last error: {last?.Message}).\n{await this.ReadLogTailAsync()}");
                }
            }
        }

        public async Task<string> ReadLogAsync(CancellationToken cancellationToken)
        {
            (string stdout, string stderr) = await container.GetLogsAsync(ct: cancellationToken);
            return stdout + stderr;
        }

        public override string ToString() => $"{Name} in container {container.Name} on 127.0.0.1:{hostPort}";
    }
}
