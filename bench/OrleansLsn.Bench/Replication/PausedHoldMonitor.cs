using Npgsql;

namespace OrleansLsn.Bench.Replication;

/// <summary>
/// Watches a paused consumer in the background: the walsender serving its application name in
/// <c>pg_stat_replication</c> (PID changes and how far it has sent) and this process's peak RSS.
/// </summary>
internal sealed class PausedHoldMonitor : IAsyncDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);

    private readonly NpgsqlConnection _connection;
    private readonly string _applicationName;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private Task? _loop;
    private int? _lastPid;
    private int _pidChanges;
    private int _absentSamples;
    private int _samples;
    private bool _absentNow;
    private Lsn _firstSent;
    private Lsn _lastSent;
    private long _peakRss;

    private PausedHoldMonitor(NpgsqlConnection connection, string applicationName)
    {
        _connection = connection;
        _applicationName = applicationName;
    }

    /// <summary>The walsender PID at the first sample.</summary>
    public int? FirstPid { get; private set; }

    /// <summary>Opens the monitor's own connection and takes the first sample before returning.</summary>
    /// <exception cref="InvalidOperationException">No walsender serves <paramref name="applicationName"/>.</exception>
    public static async Task<PausedHoldMonitor> StartAsync(string connectionString, string applicationName, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = "bench-monitor" }.ConnectionString);
        var monitor = new PausedHoldMonitor(connection, applicationName);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await monitor.SampleAsync(cancellationToken).ConfigureAwait(false);
            if (monitor.FirstPid is null)
            {
                throw new InvalidOperationException($"No walsender with application_name {applicationName} in pg_stat_replication.");
            }
        }
        catch
        {
            await monitor.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        monitor._loop = monitor.LoopAsync(monitor._stop.Token);
        return monitor;
    }

    /// <summary>Forgets the peak RSS seen so far, e.g. after taking a baseline.</summary>
    public void ResetPeakRss()
    {
        lock (_lock)
        {
            _peakRss = 0;
        }
    }

    /// <summary>Stops sampling (after one last sample) and returns what was seen.</summary>
    public async Task<Result> StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        await SampleAsync(cancellationToken).ConfigureAwait(false);
        lock (_lock)
        {
            // A walsender that vanished and never came back is a disconnect too.
            return new Result(_pidChanges + (_absentNow ? 1 : 0), _absentSamples, _samples, _lastPid, _lastSent - _firstSent, _peakRss);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        await _connection.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task LoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, stop).ConfigureAwait(false);
                await SampleAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task SampleAsync(CancellationToken cancellationToken)
    {
        int? pid = null;
        Lsn sent = Lsn.Invalid;
        await using (var command = new NpgsqlCommand(
            "select pid, coalesce(sent_lsn, '0/0')::text from pg_stat_replication where application_name = $1 order by backend_start desc limit 1",
            _connection))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = _applicationName });
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                pid = reader.GetInt32(0);
                sent = Lsn.Parse(reader.GetString(1));
            }
        }

        long rss = ProcessMemory.ReadRssBytes();
        lock (_lock)
        {
            _samples++;
            _peakRss = Math.Max(_peakRss, rss);
            _absentNow = pid is null;
            if (pid is null)
            {
                _absentSamples++;
                return;
            }

            if (FirstPid is null)
            {
                FirstPid = pid;
                _firstSent = sent;
            }
            else if (pid != _lastPid)
            {
                _pidChanges++;
            }

            _lastPid = pid;
            _lastSent = sent;
        }
    }

    /// <summary>What the monitor saw.</summary>
    /// <param name="Disconnects">Walsender PID changes, plus one if no walsender served the application at the end.</param>
    /// <param name="AbsentSamples">Samples in which no walsender served the application.</param>
    /// <param name="Samples">Samples taken.</param>
    /// <param name="LastPid">The walsender PID at the last sample that saw one.</param>
    /// <param name="SentBytes">How far the walsender's <c>sent_lsn</c> moved while watched.</param>
    /// <param name="PeakRssBytes">This process's highest RSS in any sample.</param>
    public sealed record Result(int Disconnects, int AbsentSamples, int Samples, int? LastPid, long SentBytes, long PeakRssBytes);
}
