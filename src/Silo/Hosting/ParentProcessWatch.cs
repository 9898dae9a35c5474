using System.Diagnostics;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// For silos started by <c>demo</c> or <c>cluster</c>: when <see cref="SiloProgram.ParentProcessVariable"/> names a
/// process and that process is gone (killed, crashed), the silo stops gracefully, so no silo outlives its launcher.
/// </summary>
internal static class ParentProcessWatch
{
    /// <summary>Cancels <paramref name="stop"/> once the parent named in the environment is gone; no-op without one.</summary>
    internal static Task StartAsync(CancellationTokenSource stop)
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable(SiloProgram.ParentProcessVariable), out int pid))
        {
            return Task.CompletedTask;
        }

        CancellationToken token = stop.Token;
        return Task.Run(
            async () =>
            {
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
                try
                {
                    while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
                    {
                        if (!IsAlive(pid))
                        {
                            await stop.CancelAsync().ConfigureAwait(false);
                            ForceExitAfter(ForcedExitDelay);
                            return;
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                }
            },
            CancellationToken.None);
    }

    /// <summary>
    /// How long a graceful stop may take once the parent is gone. The parent usually took PostgreSQL with it, and a silo
    /// whose membership database is gone can retry its last membership writes for minutes.
    /// </summary>
    internal static readonly TimeSpan ForcedExitDelay = TimeSpan.FromSeconds(20);

    private static void ForceExitAfter(TimeSpan delay)
    {
        var thread = new Thread(() =>
        {
            Thread.Sleep(delay);
            Console.Error.WriteLine($"The parent process is gone and the silo did not stop within {delay.TotalSeconds:0} s; exiting.");
            Environment.Exit(3);
        })
        {
            IsBackground = true,
            Name = "parent-gone exit",
        };
        thread.Start();
    }

    private static bool IsAlive(int pid)
    {
        // /proc is the ground truth on Linux (Process.GetProcessById can keep answering for a pid it cached).
        if (Directory.Exists("/proc"))
        {
            return Directory.Exists("/proc/" + pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        try
        {
            using Process process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
