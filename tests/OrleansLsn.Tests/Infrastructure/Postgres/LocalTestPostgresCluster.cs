using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>The local backend: a <see cref="LocalPostgresCluster"/> from the machine's binaries.</summary>
public sealed class LocalTestPostgresCluster : ITestPostgresCluster
{
    private readonly LocalPostgresCluster _cluster;
    private readonly IReadOnlyList<Server> _standbys;

    private LocalTestPostgresCluster(LocalPostgresCluster cluster)
    {
        _cluster = cluster;
        Primary = new Server(cluster.Primary);
        _standbys = cluster.Standbys.Select(s => new Server(s)).ToList();
    }

    public TestBackend Backend => TestBackend.Local;

    public ITestPostgresServer Primary { get; }

    public IReadOnlyList<ITestPostgresServer> Standbys => _standbys;

    /// <summary>The underlying local cluster (its folder, its servers' PIDs and data folders).</summary>
    public LocalPostgresCluster Cluster => _cluster;

    public static async Task<LocalTestPostgresCluster> StartAsync(TestPostgresClusterOptions options, CancellationToken cancellationToken)
    {
        var local = new LocalPostgresOptions
        {
            Name = options.Name,
            StandbyNames = [.. options.StandbyNames],
            WithStandby = options.StandbyNames.Count > 0,
        };
        foreach ((string key, string value) in options.Settings)
        {
            local.Settings[key] = value;
        }

        return new LocalTestPostgresCluster(await LocalPostgresCluster.StartAsync(local, cancellationToken));
    }

    public ITestPostgresServer GetStandby(string name)
    {
        LocalPostgresServer standby = _cluster.GetStandby(name);
        return _standbys.First(s => ReferenceEquals(s.Local, standby));
    }

    public Task<IReadOnlyList<string>> FindLeftoversAsync(CancellationToken cancellationToken)
    {
        var left = new List<string>();
        if (Directory.Exists(_cluster.Directory))
        {
            left.Add($"folder {_cluster.Directory}");
        }

        foreach (Server server in _standbys.Append((Server)Primary))
        {
            if (server.PostmasterPid is int pid && ProcessIsAlive(pid))
            {
                left.Add($"{server.Name}'s postmaster (PID {pid})");
            }
        }

        return Task.FromResult<IReadOnlyList<string>>(left);
    }

    public ValueTask DisposeAsync() => _cluster.DisposeAsync();

    /// <summary>Whether <paramref name="pid"/> is a live process (a zombie has exited: only its parent has not reaped it yet).</summary>
    internal static bool ProcessIsAlive(int pid)
    {
        string stat = $"/proc/{pid}/stat";
        try
        {
            string text = File.ReadAllText(stat);
            return text[(text.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private sealed class Server(LocalPostgresServer server) : ITestPostgresServer
    {
        // Read at each start: the file is gone once the server stopped or the folder was deleted.
        private int? _postmasterPid = ReadPid(server);

        public LocalPostgresServer Local => server;

        public int? PostmasterPid => _postmasterPid;

        public string Name => server.Name;

        public string ConnectionString => server.ConnectionString;

        public bool IsRunning => server.IsRunning;

        public Task StopAsync(bool immediate, CancellationToken cancellationToken) => server.StopAsync(immediate, cancellationToken);

        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await server.StartAsync(cancellationToken);
            _postmasterPid = ReadPid(server);
        }

        public async Task<string> ReadLogAsync(CancellationToken cancellationToken)
        {
            await using var stream = new FileStream(server.LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return await reader.ReadToEndAsync(cancellationToken);
        }

        public override string ToString() => server.ToString();

        private static int? ReadPid(LocalPostgresServer server)
        {
            try
            {
                return int.Parse(File.ReadLines(Path.Combine(server.DataDirectory, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                return null;
            }
        }
    }
}
