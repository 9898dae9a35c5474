using System.Globalization;
using Npgsql;

namespace OrleansLsn.PostgresLocal;

/// <summary>One local PostgreSQL server (a data directory and a port) controlled with <c>pg_ctl</c>.</summary>
public sealed class LocalPostgresServer
{
    private readonly string _binDirectory;
    private readonly TimeSpan _timeout;

    private readonly string? _password;

    internal LocalPostgresServer(string name, string binDirectory, string directory, int port, TimeSpan timeout, string? password)
    {
        _password = password;
        Name = name;
        _binDirectory = binDirectory;
        Directory = directory;
        Port = port;
        _timeout = timeout;
    }

    /// <summary><c>primary</c>, or the standby's name (<see cref="LocalPostgresOptions.StandbyNames"/>).</summary>
    public string Name { get; }

    /// <summary>The server's own folder (data directory, socket and log).</summary>
    public string Directory { get; }

    /// <summary>The data directory.</summary>
    public string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>The server log (everything the postmaster writes).</summary>
    public string LogFile => Path.Combine(Directory, "server.log");

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>Whether the server was last started (and not since stopped) through this object.</summary>
    public bool IsRunning { get; private set; }

    /// <summary>
    /// A connection string for the <c>postgres</c> superuser over TCP on loopback: with the cluster's password when
    /// <see cref="LocalPostgresOptions.PasswordAuthentication"/> is on, else none (trust). A secret then: never log it.
    /// </summary>
    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = "postgres",
        Password = _password,
        Database = "postgres",
        ApplicationName = "orleanslsn",
        Timeout = 10,
    }.ConnectionString;

    internal string PgCtl => Path.Combine(_binDirectory, "pg_ctl");

    /// <summary>Starts the server and waits until it accepts connections.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await ProcessRunner.RunAsync(
            PgCtl,
            ["-D", DataDirectory, "-l", LogFile, "-w", "-t", ((int)_timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "start"],
            asPostgresUser: true,
            _timeout + TimeSpan.FromSeconds(5),
            cancellationToken).ConfigureAwait(false);
        IsRunning = true;
    }

    /// <summary>
    /// Stops the server. <paramref name="immediate"/> is a crash stop (<c>-m immediate</c>: no checkpoint, like a kill);
    /// otherwise a fast shutdown.
    /// </summary>
    public async Task StopAsync(bool immediate = false, CancellationToken cancellationToken = default)
    {
        await ProcessRunner.RunAsync(
            PgCtl,
            ["-D", DataDirectory, "-w", "-t", ((int)_timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "-m", immediate ? "immediate" : "fast", "stop"],
            asPostgresUser: true,
            _timeout + TimeSpan.FromSeconds(5),
            cancellationToken).ConfigureAwait(false);
        IsRunning = false;
    }

    /// <summary>Reads the last <paramref name="maxChars"/> characters of the server log, for failure messages.</summary>
    public string ReadLogTail(int maxChars = 4000)
    {
        try
        {
            string text = File.ReadAllText(LogFile);
            return text.Length <= maxChars ? text : text[^maxChars..];
        }
        catch (IOException ex)
        {
            return $"(log unreadable: {ex.Message})";
        }
        catch (UnauthorizedAccessException ex)
        {
            return $"(log unreadable: {ex.Message})";
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} on 127.0.0.1:{Port}";
}
