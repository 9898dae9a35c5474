using System.Diagnostics;
using Microsoft.Extensions.Hosting;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// For silos started by <c>demo</c> or <c>cluster</c>: when <see cref="SiloProgram.ParentProcessVariable"/> names a
/// process and that process is gone (killed, crashed), the silo stops gracefully, so no silo outlives its launcher.
/// </summary>
internal sealed class ParentProcessWatch(IHostApplicationLifetime lifetime) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!int.TryParse(Environment.GetEnvironmentVariable(SiloProgram.ParentProcessVariable), out int pid))
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(500));
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (!IsAlive(pid))
                {
                    lifetime.StopApplication();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static bool IsAlive(int pid)
    {
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
