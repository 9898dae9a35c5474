using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace OrleansLsn.Silo.Local;

/// <summary>
/// One silo process of this executable (<c>silo</c> command) on this machine, configured by <c>--OrleansLsn:Key=value</c>
/// arguments, its output appended to a log file. It stops by itself when the process that started it is gone. Any user
/// can read a command line (<c>ps</c>), so secrets never go there: connection strings and passwords are given as the
/// files of their <c>…File</c> keys, and settings of the secret keys themselves are refused.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private readonly Process _process;

    private SiloProcess(string name, string region, int siloPort, int gatewayPort, int httpPort, Process process, string logPath)
    {
        Name = name;
        Region = region;
        SiloPort = siloPort;
        GatewayPort = gatewayPort;
        HttpPort = httpPort;
        _process = process;
        LogPath = logPath;
    }

    public string Name { get; }

    public string Region { get; }

    public int SiloPort { get; }

    public int GatewayPort { get; }

    public int HttpPort { get; }

    public string LogPath { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The silo's address as Orleans prints it in statuses (<c>host:port@generation</c>) starts with this.</summary>
    public string AddressPrefix => $"127.0.0.1:{SiloPort}@";

    /// <exception cref="ArgumentException">A setting is a secret (<c>…ConnectionString</c>, <c>…Password</c>): give its <c>…File</c> key.</exception>
    public static SiloProcess Start(string name, string region, IReadOnlyDictionary<string, string> settings, string logFolder, bool? serverGarbageCollection = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Keys.FirstOrDefault(IsSecretKey) is { } secret)
        {
            throw new ArgumentException($"{secret} would be on the silo's command line; give it as a file with {secret}File.", nameof(settings));
        }

        int siloPort = int.Parse(settings["OrleansLsn:SiloPort"], System.Globalization.CultureInfo.InvariantCulture);
        int gatewayPort = int.Parse(settings["OrleansLsn:GatewayPort"], System.Globalization.CultureInfo.InvariantCulture);
        int httpPort = int.Parse(settings["OrleansLsn:HttpPort"], System.Globalization.CultureInfo.InvariantCulture);
        (string fileName, string[] prefix) = Launcher();
        string logPath = Path.Combine(logFolder, name + ".log");

        // The silo writes straight into its log file (the shell's redirection, then exec): a pipe to this process
        // would break when this process dies, and a silo blocked on a full console would never notice it should stop.
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec \"$@\" >>\"$ORLEANSLSN_SILO_LOG\" 2>&1");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(fileName);
        foreach (string arg in prefix)
        {
            start.ArgumentList.Add(arg);
        }

        start.ArgumentList.Add("silo");
        foreach ((string key, string value) in settings)
        {
            start.ArgumentList.Add($"--{key}={value}");
        }

        start.Environment[Hosting.SiloProgram.ParentProcessVariable] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["ORLEANSLSN_SILO_LOG"] = logPath;
        if (serverGarbageCollection is { } server)
        {
            start.Environment["DOTNET_gcServer"] = server ? "1" : "0";
        }
        else
        {
            // The executable's own setting (its runtimeconfig), not one inherited from this process's environment.
            start.Environment.Remove("DOTNET_gcServer");
        }
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.Start();
        return new SiloProcess(name, region, siloPort, gatewayPort, httpPort, process, logPath);
    }

    /// <summary>Waits until <c>/healthz</c> answers 200 (the silo is an active member), or fails with the log's tail.</summary>
    public async Task WaitHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"Silo {Name} exited with code {_process.ExitCode} before it was healthy:\n{ReadLogTail()}");
            }

            if (await IsHealthyAsync(cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            if (sw.Elapsed > timeout)
            {
                throw new TimeoutException($"Silo {Name} was not healthy after {timeout.TotalSeconds:0} s:\n{ReadLogTail()}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<bool> IsHealthyAsync(CancellationToken cancellationToken)
    {
        try
        {
            using HttpResponseMessage response = await Http.GetAsync(new Uri($"http://127.0.0.1:{HttpPort}/healthz"), cancellationToken).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The <c>/healthz</c> document, or null when the silo does not answer.</summary>
    public async Task<JsonDocument?> GetHealthAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await Http.GetFromJsonAsync<JsonDocument>(new Uri($"http://127.0.0.1:{HttpPort}/healthz"), cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>The process's resident set size (<c>VmRSS</c>), in bytes.</summary>
    public long ReadRssBytes()
    {
        foreach (string line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                string[] parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"No VmRSS for process {Pid}.");
    }

    /// <summary>Waits until the process exits by itself and returns its exit code; throws <see cref="TimeoutException"/> after <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await _process.WaitForExitAsync(cancellationToken).WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"silo {Name} (pid {Pid}) did not exit within {timeout.TotalSeconds:0} s; its log ends with:\n{ReadLogTail()}");
        }

        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown at all, as a crash.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
    }

    /// <summary>SIGTERM, then waits for the graceful shutdown (SIGKILL after <paramref name="timeout"/>).</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return;
        }

        SendTerm(_process.Id);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Kill();
            await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    public string ReadLogTail(int lines = 40)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            string[] all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
        _process.Dispose();
    }

    private static bool IsSecretKey(string key) =>
        key.EndsWith("ConnectionString", StringComparison.OrdinalIgnoreCase) || key.EndsWith("Password", StringComparison.OrdinalIgnoreCase);

    /// <summary>How to start this executable: its apphost, or <c>dotnet</c> with its assembly.</summary>
    private static (string FileName, string[] Prefix) Launcher()
    {
        string assembly = typeof(SiloProcess).Assembly.Location;
        string? host = Environment.ProcessPath;
        string dotnet = host is not null && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";
        return (dotnet, [assembly]);
    }

    /// <summary>SIGTERM through kill(1): the host then stops gracefully, as under a container runtime.</summary>
    private static void SendTerm(int pid)
    {
        using Process? kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false });
        kill?.WaitForExit(5000);
    }
}
