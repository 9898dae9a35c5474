using System.Collections.Concurrent;
using System.Diagnostics;

namespace OrleansLsn.Tests.GrainRuntime;

/// <summary>Runs tests/OrleansLsn.Runtime.TestHost as a separate process and collects its output lines.</summary>
internal sealed class TestHostProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = [];

    private TestHostProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _lines.Add(e.Data);
            }
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static TestHostProcess Start(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "OrleansLsn.Runtime.TestHost.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return new TestHostProcess(Process.Start(info) ?? throw new InvalidOperationException("Could not start the test host."));
    }

    /// <summary>Waits for a line starting with <paramref name="prefix"/> and returns it.</summary>
    public string WaitForLine(string prefix, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !_lines.TryTake(out string? line, left))
            {
                throw new TimeoutException($"The test host did not print '{prefix}…' within {timeout} (exited: {_process.HasExited}).");
            }

            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line;
            }
        }
    }

    public void Kill() => _process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process.Dispose();
        _lines.Dispose();
    }
}
