using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace OrleansLsn.PostgresLocal;

/// <summary>
/// A throw-away PostgreSQL primary (<c>wal_level=logical</c>) and any number of hot standbys (<c>pg_basebackup -R</c>, or a
/// low-level base backup where the binaries have no <c>pg_basebackup</c>; see <see cref="LocalPostgresOptions.StandbyCopy"/>;
/// one per name in <see cref="LocalPostgresOptions.StandbyNames"/>, e.g. one per region) on free loopback ports, built
/// from the machine's own binaries in a temporary folder. When this process runs as root the servers run as the
/// <c>postgres</c> OS user. Nothing is left behind: <see cref="DisposeAsync"/> stops every server and deletes the
/// folder, a detached reaper does the same if this process is killed, and every start first cleans up folders whose
/// owning process is gone.
/// </summary>
/// <remarks>
/// The methods without a standby argument (<see cref="PauseReplayAsync(CancellationToken)"/>,
/// <see cref="StopStandbyAsync(bool, CancellationToken)"/>, ...) act on the first standby, <see cref="Standby"/>; their
/// overloads take a standby by name or as one of <see cref="Standbys"/>.
/// </remarks>
public sealed class LocalPostgresCluster : IAsyncDisposable
{
    /// <summary>The primary's name and folder (<c>&lt;cluster folder&gt;/primary</c>); no standby may use it.</summary>
    internal const string PrimaryName = "primary";

    /// <summary>The password file given to <c>initdb</c>, in the primary's folder (the data folder's parent).</summary>
    internal const string PasswordFileName = "pwfile";

    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(120);

    // Letters and digits only: safe unquoted in a conninfo string, in postgresql.conf and in a connection string.
    private const string PasswordCharacters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    private readonly Reaper _reaper;
    private int _disposed;

    private LocalPostgresCluster(string directory, LocalPostgresServer primary, IReadOnlyList<LocalPostgresServer> standbys, Reaper reaper)
    {
        Directory = directory;
        Primary = primary;
        Standbys = standbys.ToList().AsReadOnly();
        _reaper = reaper;
    }

    /// <summary>The cluster's folder (deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>The primary.</summary>
    public LocalPostgresServer Primary { get; }

    /// <summary>
    /// The hot standbys streaming from <see cref="Primary"/>, in the order of <see cref="LocalPostgresOptions.StandbyNames"/>;
    /// empty when none was requested. Each one's <see cref="LocalPostgresServer.Name"/> is its standby name, and it
    /// lives in <c><see cref="Directory"/>/&lt;name&gt;</c>.
    /// </summary>
    public IReadOnlyList<LocalPostgresServer> Standbys { get; }

    /// <summary>The first of <see cref="Standbys"/>; <see langword="null"/> when the cluster has none.</summary>
    public LocalPostgresServer? Standby => Standbys.Count == 0 ? null : Standbys[0];

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

    /// <summary>
    /// Starts a primary, then its hot standbys (all at once, each from its own base backup). Typically 2–4 s
    /// for a primary and one or two standbys.
    /// </summary>
    /// <exception cref="ArgumentException">A standby name in <paramref name="options"/> is invalid or repeated; nothing was started.</exception>
    /// <exception cref="LocalPostgresException">Binaries are missing or a server failed to start; the message has its log.</exception>
    public static async Task<LocalPostgresCluster> StartAsync(LocalPostgresOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new LocalPostgresOptions();
        IReadOnlyList<string> standbyNames = LocalPostgresOptionsValidator.GetStandbyNames(options);
        string binDir = options.BinDirectory ?? PostgresBinaries.FindBinDirectory();
        await PrepareRootAsync(options.RootDirectory, cancellationToken).ConfigureAwait(false);
        await SweepAbandonedAsync(options.RootDirectory, binDir, cancellationToken).ConfigureAwait(false);

        string dir = Path.Combine(options.RootDirectory, $"{options.Name}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        await MakeDirectoryAsync(dir, cancellationToken).ConfigureAwait(false);
        OwnerMarker.Current.Write(dir);
        string pgCtl = Path.Combine(binDir, "pg_ctl");
        // The reaper stops whatever server folder it finds at the time, so it covers standbys created after it started.
        Reaper reaper = Reaper.Start(dir, pgCtl);

        // One password per cluster, only in this process's memory, the password file and the servers' own configuration.
        string? password = options.PasswordAuthentication ? RandomNumberGenerator.GetString(PasswordCharacters, 32) : null;
        try
        {
            LocalPostgresServer primary = await CreatePrimaryAsync(options, binDir, Path.Combine(dir, PrimaryName), password, cancellationToken)
                .ConfigureAwait(false);
            if (options.SynchronizeSlots)
            {
                await PrepareSlotSynchronizationAsync(primary, standbyNames, cancellationToken).ConfigureAwait(false);
            }

            LocalPostgresServer[] standbys = await CreateStandbysAsync(options, binDir, primary, dir, standbyNames, password, cancellationToken)
                .ConfigureAwait(false);
            return new LocalPostgresCluster(dir, primary, standbys, reaper);
        }
        catch
        {
            // The reaper stops whatever did start and deletes the folder.
            reaper.Dispose();
            throw;
        }
    }

    /// <summary>Stops every server (immediate mode: the data is thrown away) and deletes the folder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (LocalPostgresServer server in Standbys.Append(Primary))
        {
            if (File.Exists(Path.Combine(server.DataDirectory, "postmaster.pid")))
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

    /// <summary>
    /// Returns the standby named <paramref name="name"/> (one of <see cref="Standbys"/>; names are compared ordinally).
    /// </summary>
    /// <exception cref="ArgumentException">The cluster has no standby of that name; the message lists those it has.</exception>
    public LocalPostgresServer GetStandby(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (LocalPostgresServer standby in Standbys)
        {
            if (string.Equals(standby.Name, name, StringComparison.Ordinal))
            {
                return standby;
            }
        }

        string known = Standbys.Count == 0
            ? "this cluster has no standby (LocalPostgresOptions.WithStandby = false or StandbyNames empty)"
            : "its standbys are " + string.Join(", ", Standbys.Select(s => $"'{s.Name}'"));
        throw new ArgumentException($"This cluster has no standby named '{name}'; {known}.", nameof(name));
    }

    /// <summary>Pauses WAL replay on the first standby (<c>pg_wal_replay_pause()</c>) and waits until it is paused.</summary>
    /// <exception cref="InvalidOperationException">The cluster has no standby.</exception>
    public Task PauseReplayAsync(CancellationToken cancellationToken = default) =>
        PauseReplayAsync(RequireStandby(), cancellationToken);

    /// <summary>Pauses WAL replay on the named standby and waits until it is paused; the other standbys keep replaying.</summary>
    /// <exception cref="ArgumentException">No standby has that name.</exception>
    public Task PauseReplayAsync(string standbyName, CancellationToken cancellationToken = default) =>
        PauseReplayAsync(GetStandby(standbyName), cancellationToken);

    /// <summary>Pauses WAL replay on <paramref name="standby"/> and waits until it is paused; the other standbys keep replaying.</summary>
    /// <exception cref="ArgumentException"><paramref name="standby"/> is not one of <see cref="Standbys"/>.</exception>
    public Task PauseReplayAsync(LocalPostgresServer standby, CancellationToken cancellationToken = default) =>
        ReplicaControl.PauseReplayAsync(RequireOwnStandby(standby).ConnectionString, cancellationToken);

    /// <summary>Resumes WAL replay on the first standby (<c>pg_wal_replay_resume()</c>).</summary>
    /// <exception cref="InvalidOperationException">The cluster has no standby.</exception>
    public Task ResumeReplayAsync(CancellationToken cancellationToken = default) =>
        ResumeReplayAsync(RequireStandby(), cancellationToken);

    /// <summary>Resumes WAL replay on the named standby.</summary>
    /// <exception cref="ArgumentException">No standby has that name.</exception>
    public Task ResumeReplayAsync(string standbyName, CancellationToken cancellationToken = default) =>
        ResumeReplayAsync(GetStandby(standbyName), cancellationToken);

    /// <summary>Resumes WAL replay on <paramref name="standby"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="standby"/> is not one of <see cref="Standbys"/>.</exception>
    public Task ResumeReplayAsync(LocalPostgresServer standby, CancellationToken cancellationToken = default) =>
        ReplicaControl.ResumeReplayAsync(RequireOwnStandby(standby).ConnectionString, cancellationToken);

    /// <summary>Stops the first standby; <paramref name="immediate"/> simulates a crash.</summary>
    /// <exception cref="InvalidOperationException">The cluster has no standby.</exception>
    public Task StopStandbyAsync(bool immediate = true, CancellationToken cancellationToken = default) =>
        StopStandbyAsync(RequireStandby(), immediate, cancellationToken);

    /// <summary>Stops the named standby; <paramref name="immediate"/> simulates a crash. The others keep running.</summary>
    /// <exception cref="ArgumentException">No standby has that name.</exception>
    public Task StopStandbyAsync(string standbyName, bool immediate = true, CancellationToken cancellationToken = default) =>
        StopStandbyAsync(GetStandby(standbyName), immediate, cancellationToken);

    /// <summary>Stops <paramref name="standby"/>; <paramref name="immediate"/> simulates a crash. The others keep running.</summary>
    /// <exception cref="ArgumentException"><paramref name="standby"/> is not one of <see cref="Standbys"/>.</exception>
    public Task StopStandbyAsync(LocalPostgresServer standby, bool immediate = true, CancellationToken cancellationToken = default) =>
        RequireOwnStandby(standby).StopAsync(immediate, cancellationToken);

    /// <summary>Starts the first standby again; it reconnects to the primary and catches up.</summary>
    /// <exception cref="InvalidOperationException">The cluster has no standby.</exception>
    public Task StartStandbyAsync(CancellationToken cancellationToken = default) =>
        StartStandbyAsync(RequireStandby(), cancellationToken);

    /// <summary>Starts the named standby again; it reconnects to the primary and catches up.</summary>
    /// <exception cref="ArgumentException">No standby has that name.</exception>
    public Task StartStandbyAsync(string standbyName, CancellationToken cancellationToken = default) =>
        StartStandbyAsync(GetStandby(standbyName), cancellationToken);

    /// <summary>Starts <paramref name="standby"/> again; it reconnects to the primary and catches up.</summary>
    /// <exception cref="ArgumentException"><paramref name="standby"/> is not one of <see cref="Standbys"/>.</exception>
    public Task StartStandbyAsync(LocalPostgresServer standby, CancellationToken cancellationToken = default) =>
        RequireOwnStandby(standby).StartAsync(cancellationToken);

    /// <summary>Waits until the first standby has replayed everything the primary has flushed so far.</summary>
    /// <exception cref="InvalidOperationException">The cluster has no standby.</exception>
    /// <exception cref="TimeoutException">Not caught up in time; the message has both positions.</exception>
    public Task WaitForStandbyCatchUpAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitForStandbyCatchUpAsync(RequireStandby(), timeout, cancellationToken);

    /// <summary>Waits until the named standby has replayed everything the primary has flushed so far.</summary>
    /// <exception cref="ArgumentException">No standby has that name.</exception>
    /// <exception cref="TimeoutException">Not caught up in time; the message has both positions.</exception>
    public Task WaitForStandbyCatchUpAsync(string standbyName, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitForStandbyCatchUpAsync(GetStandby(standbyName), timeout, cancellationToken);

    /// <summary>Waits until <paramref name="standby"/> has replayed everything the primary has flushed so far.</summary>
    /// <exception cref="ArgumentException"><paramref name="standby"/> is not one of <see cref="Standbys"/>.</exception>
    /// <exception cref="TimeoutException">Not caught up in time; the message has both positions.</exception>
    public Task WaitForStandbyCatchUpAsync(LocalPostgresServer standby, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ReplicaControl.WaitForCatchUpAsync(Primary.ConnectionString, RequireOwnStandby(standby).ConnectionString, timeout, cancellationToken);

    /// <summary>The first <c>server_version_num</c> with slot synchronisation (<c>sync_replication_slots</c>).</summary>
    internal const int SlotSynchronizationVersion = 170000;

    /// <summary>
    /// The physical slot on the primary that the standby <paramref name="standbyName"/> streams through when
    /// <see cref="LocalPostgresOptions.SynchronizeSlots"/> is on: <c>&lt;name&gt;_slot</c>, with <c>-</c> as <c>_</c>.
    /// </summary>
    public static string StandbySlotName(string standbyName)
    {
        ArgumentNullException.ThrowIfNull(standbyName);
        return standbyName.Replace('-', '_') + "_slot";
    }

    /// <summary>Promotes the first standby (<c>pg_ctl promote</c>) and waits until it is out of recovery.</summary>
    /// <exception cref="InvalidOperationException">The cluster has no standby.</exception>
    /// <exception cref="TimeoutException">Still in recovery after <paramref name="timeout"/>.</exception>
    public Task PromoteAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        PromoteAsync(RequireStandby(), timeout, cancellationToken);

    /// <summary>Promotes the named standby and waits until it is out of recovery.</summary>
    /// <exception cref="ArgumentException">No standby has that name.</exception>
    /// <exception cref="TimeoutException">Still in recovery after <paramref name="timeout"/>.</exception>
    public Task PromoteAsync(string standbyName, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        PromoteAsync(GetStandby(standbyName), timeout, cancellationToken);

    /// <summary>
    /// Promotes <paramref name="standby"/> (<c>pg_ctl promote</c>) and waits until <c>pg_is_in_recovery()</c> is false
    /// on it. It then accepts writes on a new timeline; it stays in <see cref="Standbys"/> (and is stopped on dispose).
    /// Stop <see cref="Primary"/> first unless two primaries are what the test wants.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="standby"/> is not one of <see cref="Standbys"/>.</exception>
    /// <exception cref="TimeoutException">Still in recovery after <paramref name="timeout"/>.</exception>
    public async Task PromoteAsync(LocalPostgresServer standby, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        RequireOwnStandby(standby);
        await ProcessRunner.RunAsync(
            standby.PgCtl,
            ["-D", standby.DataDirectory, "-w", "-t", ((int)Math.Ceiling(timeout.TotalSeconds)).ToString(CultureInfo.InvariantCulture), "promote"],
            asPostgresUser: true,
            timeout + TimeSpan.FromSeconds(5),
            cancellationToken).ConfigureAwait(false);
        await ReplicaControl.WaitForPromotionAsync(standby.ConnectionString, timeout, cancellationToken).ConfigureAwait(false);
    }

    private LocalPostgresServer RequireStandby() =>
        Standby ?? throw new InvalidOperationException(
            "This cluster was started without a standby (LocalPostgresOptions.WithStandby = false or StandbyNames empty).");

    private LocalPostgresServer RequireOwnStandby(LocalPostgresServer standby)
    {
        ArgumentNullException.ThrowIfNull(standby);
        if (!Standbys.Contains(standby))
        {
            throw new ArgumentException(
                $"{standby} is not a standby of this cluster (cluster folder {Directory}); pass one of {nameof(Standbys)} or a standby name.",
                nameof(standby));
        }

        return standby;
    }

    private static async Task<LocalPostgresServer> CreatePrimaryAsync(
        LocalPostgresOptions options, string binDir, string serverDir, string? password, CancellationToken cancellationToken)
    {
        await MakeDirectoryAsync(serverDir, cancellationToken).ConfigureAwait(false);
        string dataDir = Path.Combine(serverDir, "data");
        string[] authentication = ["-A", "trust"];
        if (password is not null)
        {
            string passwordFile = Path.Combine(serverDir, PasswordFileName);
            await WritePrivateFileAsync(passwordFile, password + "\n", cancellationToken).ConfigureAwait(false);
            // The Unix socket lives in the cluster's private folder (mode 700): only the servers' OS user reaches it.
            authentication = ["--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile=" + passwordFile];
        }

        await ProcessRunner.RunAsync(
            Path.Combine(binDir, "initdb"),
            ["-D", dataDir, .. authentication, "-U", "postgres", "-E", "UTF8", "--locale=C", "-N"],
            asPostgresUser: true,
            ToolTimeout,
            cancellationToken).ConfigureAwait(false);

        var settings = new Dictionary<string, string>(DefaultSettings);
        foreach ((string key, string value) in options.Settings)
        {
            settings[key] = value;
        }

        return await StartOnFreePortAsync(PrimaryName, binDir, serverDir, settings, options.StartTimeout, password, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes a file only its owner reads (mode 600), owned by the servers' OS user when this process is root.</summary>
    private static async Task WritePrivateFileAsync(string path, string content, CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Local PostgreSQL clusters are supported on Linux and macOS.");
        }

        var mode = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite };
        await using (var stream = new FileStream(path, mode))
        await using (var writer = new StreamWriter(stream))
        {
            await writer.WriteAsync(content.AsMemory(), cancellationToken).ConfigureAwait(false);
        }

        if (ProcessRunner.RunningAsRoot)
        {
            await ProcessRunner.RunAsync("chown", [$"{ProcessRunner.PostgresOsUser}:", path], asPostgresUser: false, ToolTimeout, cancellationToken)
                .ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Checks that the primary can synchronise slots, creates each standby's physical slot (reserving WAL at once, so
    /// the standby's base backup is covered) and lists them in <c>synchronized_standby_slots</c>: logical walsenders of
    /// failover slots then send nothing the standbys have not received. The setting goes into postgresql.conf (not
    /// ALTER SYSTEM), so that each standby's own appended value wins over the copy it inherits.
    /// </summary>
    private static async Task PrepareSlotSynchronizationAsync(
        LocalPostgresServer primary, IReadOnlyList<string> standbyNames, CancellationToken cancellationToken)
    {
        await using var conn = new Npgsql.NpgsqlConnection(primary.ConnectionString);
        await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
        int version;
        await using (var cmd = new Npgsql.NpgsqlCommand("select current_setting('server_version_num')::int", conn))
        {
            version = (int)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        if (version < SlotSynchronizationVersion)
        {
            throw new LocalPostgresException(
                $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.SynchronizeSlots)} needs PostgreSQL 17 or later (sync_replication_slots); these binaries run PostgreSQL {version / 10000} (server_version_num {version}).");
        }

        foreach (string name in standbyNames)
        {
            await using var create = new Npgsql.NpgsqlCommand("select pg_create_physical_replication_slot($1, true)", conn);
            create.Parameters.AddWithValue(StandbySlotName(name));
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        string slots = string.Join(",", standbyNames.Select(StandbySlotName));
        string confPath = Path.Combine(primary.DataDirectory, "postgresql.conf");
        await File.AppendAllTextAsync(confPath, $"synchronized_standby_slots = '{slots}'\n", cancellationToken).ConfigureAwait(false);
        await using (var reload = new Npgsql.NpgsqlCommand("select pg_reload_conf()", conn))
        {
            await reload.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // The reload is asynchronous; wait until new sessions see it.
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            await using var check = new Npgsql.NpgsqlConnection(primary.ConnectionString);
            await check.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var show = new Npgsql.NpgsqlCommand("select current_setting('synchronized_standby_slots')", check);
            if ((string?)await show.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) == slots)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new LocalPostgresException($"The primary did not take synchronized_standby_slots = '{slots}' within 30 s after a reload.");
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Creates the standbys side by side: concurrent base backups of one primary are safe (each has its own WAL sender
    /// and temporary slot, and its own folder and port). The first failure cancels the others, and it is the one thrown.
    /// </summary>
    private static async Task<LocalPostgresServer[]> CreateStandbysAsync(
        LocalPostgresOptions options,
        string binDir,
        LocalPostgresServer primary,
        string clusterDir,
        IReadOnlyList<string> names,
        string? password,
        CancellationToken cancellationToken)
    {
        using var firstFailure = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task<LocalPostgresServer>[] tasks = names.Select(CreateOneAsync).ToArray();
        // WhenAll completes only when every task has, so no server is still starting when the caller cleans up; and a
        // faulted task wins over the siblings it cancelled, so the real failure is the one thrown.
        return await Task.WhenAll(tasks).ConfigureAwait(false);

        async Task<LocalPostgresServer> CreateOneAsync(string name)
        {
            try
            {
                return await CreateStandbyAsync(options, binDir, primary, name, Path.Combine(clusterDir, name), password, firstFailure.Token)
                    .ConfigureAwait(false);
            }
            catch
            {
                await firstFailure.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    private static async Task<LocalPostgresServer> CreateStandbyAsync(
        LocalPostgresOptions options,
        string binDir,
        LocalPostgresServer primary,
        string name,
        string serverDir,
        string? password,
        CancellationToken cancellationToken)
    {
        await MakeDirectoryAsync(serverDir, cancellationToken).ConfigureAwait(false);
        // primary_conninfo carries application_name: the primary's pg_stat_replication then shows each standby under
        // its own name. Names are [a-z0-9_-], safe unquoted.
        // The slot sync worker needs a database in primary_conninfo.
        string conninfo = string.Create(
            CultureInfo.InvariantCulture,
            $"host=127.0.0.1 port={primary.Port} user=postgres application_name={name}{(options.SynchronizeSlots ? " dbname=postgres" : "")}");
        string dataDir = Path.Combine(serverDir, "data");
        // cluster_name puts the standby's name in its processes' titles (ps). postgresql.conf came from the primary;
        // appended lines win over its port and socket folder.
        var settings = new Dictionary<string, string> { ["cluster_name"] = $"'{name}'" };
        string slot = StandbySlotName(name);
        if (options.SynchronizeSlots)
        {
            settings["sync_replication_slots"] = "on";
            settings["hot_standby_feedback"] = "on";
            // Inherited from the primary's postgresql.conf; a promoted standby has no such slots and would hold its
            // logical walsenders back waiting for them.
            settings["synchronized_standby_slots"] = "''";
        }

        if (UsesPgBaseBackup(options, binDir))
        {
            // -R writes primary_conninfo (with the password it connected with, from PGPASSWORD: never on the command
            // line), standby.signal and, with -S, primary_slot_name.
            string[] arguments = options.SynchronizeSlots
                ? ["-d", conninfo, "-D", dataDir, "-R", "-X", "stream", "-c", "fast", "-N", "-S", slot]
                : ["-d", conninfo, "-D", dataDir, "-R", "-X", "stream", "-c", "fast", "-N"];
            await ProcessRunner.RunAsync(
                Path.Combine(binDir, "pg_basebackup"),
                arguments,
                asPostgresUser: true,
                ToolTimeout,
                cancellationToken,
                password is null ? null : new Dictionary<string, string> { ["PGPASSWORD"] = password }).ConfigureAwait(false);
        }
        else
        {
            await LowLevelBaseBackup.TakeAsync(primary, dataDir, $"orleanslsn {name}", ToolTimeout, cancellationToken).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(dataDir, "standby.signal"), "", cancellationToken).ConfigureAwait(false);
            if (ProcessRunner.RunningAsRoot)
            {
                await ProcessRunner.RunAsync(
                    "chown", [$"{ProcessRunner.PostgresOsUser}:", Path.Combine(dataDir, "standby.signal")], asPostgresUser: false, ToolTimeout, cancellationToken)
                    .ConfigureAwait(false);
            }

            settings["primary_conninfo"] = password is null ? $"'{conninfo}'" : $"'{conninfo} password={password}'";
            if (options.SynchronizeSlots)
            {
                settings["primary_slot_name"] = $"'{slot}'";
            }
        }

        if (options.StandbySettings.TryGetValue(name, out IDictionary<string, string>? own))
        {
            foreach ((string key, string value) in own)
            {
                settings[key] = value;
            }
        }

        return await StartOnFreePortAsync(name, binDir, serverDir, settings, options.StartTimeout, password, cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>Whether standbys are made with <c>pg_basebackup</c> (else with <see cref="LowLevelBaseBackup"/>).</summary>
    internal static bool UsesPgBaseBackup(LocalPostgresOptions options, string binDir) => options.StandbyCopy switch
    {
        StandbyCopyMethod.PgBaseBackup => true,
        StandbyCopyMethod.LowLevelBackup => false,
        _ => PostgresBinaries.HasTool(binDir, "pg_basebackup"),
    };

    private static async Task<LocalPostgresServer> StartOnFreePortAsync(
        string name,
        string binDir,
        string serverDir,
        Dictionary<string, string> settings,
        TimeSpan timeout,
        string? password,
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

            var server = new LocalPostgresServer(name, binDir, serverDir, port, timeout, password);
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

            foreach (string dataDir in ServerDataDirectoriesWithPid(dir))
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

    /// <summary>
    /// Every <c>&lt;cluster folder&gt;/*/data</c> holding a <c>postmaster.pid</c>, standbys first and the primary last
    /// (the same set the reaper stops): any server folder, whatever the standbys were named.
    /// </summary>
    internal static IReadOnlyList<string> ServerDataDirectoriesWithPid(string clusterDirectory)
    {
        string[] serverDirs;
        try
        {
            serverDirs = System.IO.Directory.GetDirectories(clusterDirectory);
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }

        return serverDirs
            .OrderBy(d => Path.GetFileName(d) == PrimaryName)
            .ThenBy(d => d, StringComparer.Ordinal)
            .Select(d => Path.Combine(d, "data"))
            .Where(d => File.Exists(Path.Combine(d, "postmaster.pid")))
            .ToList();
    }
}
