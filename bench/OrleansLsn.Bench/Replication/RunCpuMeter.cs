using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// Where the CPU time of one streaming run went: this process (the in-process consumers), its waited-for children
/// (<c>pg_recvlogical</c>), the walsender serving the run (local server only: read from <c>/proc/&lt;pid&gt;/stat</c>, sampled every
/// 100 ms while it lives), and how busy the whole machine was (<c>/proc/stat</c>, every process of every tenant).
/// </summary>
internal sealed class RunCpuMeter : IAsyncDisposable
{
    // USER_HZ: the unit of /proc CPU times on every mainstream Linux architecture.
    private const double TicksPerSecond = 100;
    // Fields of /proc/<pid>/stat counted from 0 at "state" (the first after the command name): utime, stime, cutime, cstime.
    private const int UserTimeIndex = 11;
    private const int ChildrenUserTimeIndex = 13;

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    private readonly TimeSpan _self;
    private readonly double _children;
    private readonly (long Busy, long Total) _machine;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task? _walsenderLoop;
    private double _walsender = double.NaN;

    private RunCpuMeter(string? primary, string applicationName)
    {
        _self = Process.GetCurrentProcess().TotalProcessorTime;
        _children = ChildrenSeconds();
        _machine = Machine();
        if (primary is not null)
        {
            _walsenderLoop = SampleWalsenderAsync(primary, applicationName, _stop.Token);
        }
    }

    /// <summary>Starts measuring; <paramref name="localPrimary"/> is <see langword="null"/> when the server is not on this machine.</summary>
    public static RunCpuMeter Start(string? localPrimary, string applicationName) => new(localPrimary, applicationName);

    public async Task<Result> StopAsync()
    {
        TimeSpan self = Process.GetCurrentProcess().TotalProcessorTime - _self;
        double children = ChildrenSeconds() - _children;
        (long busy, long total) = Machine();
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_walsenderLoop is not null)
        {
            await _walsenderLoop.ConfigureAwait(false);
        }

        long span = total - _machine.Total;
        return new Result(
            self.TotalSeconds,
            children,
            Volatile.Read(ref _walsender),
            span > 0 ? 100.0 * (busy - _machine.Busy) / span : double.NaN);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_walsenderLoop is not null)
        {
            await _walsenderLoop.ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    private async Task SampleWalsenderAsync(string primary, string applicationName, CancellationToken stop)
    {
        try
        {
            await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(primary) { ApplicationName = "bench-monitor" }.ConnectionString);
            await connection.OpenAsync(stop).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select pid from pg_stat_replication where application_name = $1", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = applicationName });
            int? pid = null;
            while (!stop.IsCancellationRequested)
            {
                pid ??= await command.ExecuteScalarAsync(stop).ConfigureAwait(false) as int?;
                if (pid is int p && ProcessSeconds($"/proc/{p.ToString(CultureInfo.InvariantCulture)}/stat", UserTimeIndex) is double seconds)
                {
                    Volatile.Write(ref _walsender, seconds);
                }

                await Task.Delay(Interval, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>CPU seconds of this process's waited-for children (cutime + cstime).</summary>
    private static double ChildrenSeconds() => ProcessSeconds("/proc/self/stat", ChildrenUserTimeIndex) ?? double.NaN;

    /// <summary>
    /// The sum of two consecutive CPU-time fields of a <c>/proc/&lt;pid&gt;/stat</c> file (user, then system), in seconds;
    /// <see langword="null"/> if the process is gone.
    /// </summary>
    private static double? ProcessSeconds(string path, int index)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }

        // The command name is in parentheses and may hold spaces: count fields after the last ')'.
        string[] fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[index], CultureInfo.InvariantCulture) + long.Parse(fields[index + 1], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    private static (long Busy, long Total) Machine()
    {
        // "cpu  user nice system idle iowait irq softirq steal ..."
        string first = File.ReadLines("/proc/stat").First();
        long[] values = [.. first.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(v => long.Parse(v, CultureInfo.InvariantCulture))];
        long total = values.Sum();
        return (total - values[3] - values[4], total);
    }

    /// <summary>CPU seconds spent during one run, and the machine's busy share.</summary>
    /// <param name="ClientSeconds">This process.</param>
    /// <param name="ChildSeconds">Children that exited during the run (pg_recvlogical).</param>
    /// <param name="WalsenderSeconds">The walsender's CPU time at its last sample, or NaN when it could not be read.</param>
    /// <param name="MachineBusyPercent">Share of all CPUs busy (any process) during the run.</param>
    public sealed record Result(double ClientSeconds, double ChildSeconds, double WalsenderSeconds, double MachineBusyPercent);
}
