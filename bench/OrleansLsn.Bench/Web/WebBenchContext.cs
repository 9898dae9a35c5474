using System.Diagnostics;
using System.Globalization;
using Npgsql;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Bench.Web;

/// <summary>
/// The <c>web</c> benchmark's deployment: a local primary with a hot standby per region (eu-west, us-east), one silo
/// process per region, and one instance of the to-do sample per read policy in this process, all reading in
/// <see cref="Region"/>, whose standby's replay delay (<c>recovery_min_apply_delay</c>) is changed between lags.
/// </summary>
internal sealed class WebBenchContext : IAsyncDisposable
{
    /// <summary>The region the apps read in; its standby gets the lag.</summary>
    public const string Region = "eu-west";

    private const string ProbeTable = "bench_web_probe";

    private readonly List<PolicyApp> _apps;

    private WebBenchContext(LocalDeployment deployment, List<PolicyApp> apps, bool quick)
    {
        Deployment = deployment;
        Quick = quick;
        _apps = apps;
    }

    public LocalDeployment Deployment { get; }

    public bool Quick { get; }

    public IReadOnlyList<PolicyApp> Apps => _apps;

    private string Primary => Deployment.Postgres.Primary.ConnectionString;

    private string Standby => Deployment.ReplicaOf(Region);

    public static async Task<WebBenchContext> StartAsync(bool quick, Action<string> progress, CancellationToken cancellationToken)
    {
        var options = new LocalDeploymentOptions
        {
            Name = "bench-web",
            SilosPerRegion = 1,
        };
        options.SetupSql.Add($"create table {ProbeTable} (id bigserial primary key, at timestamptz not null default now())");
        LocalDeployment deployment = await LocalDeployment.StartAsync(options, progress, cancellationToken).ConfigureAwait(false);
        var apps = new List<PolicyApp>();
        try
        {
            // One after another: each creates the sample's table if missing.
            foreach (string policy in WebPolicy.All)
            {
                var sw = Stopwatch.StartNew();
                apps.Add(await PolicyApp.StartAsync(deployment, Region, policy, cancellationToken).ConfigureAwait(false));
                progress(string.Create(CultureInfo.InvariantCulture, $"  the sample for '{policy}' at {apps[^1].Address} ({sw.Elapsed.TotalSeconds:0.0} s)"));
            }

            return new WebBenchContext(deployment, apps, quick);
        }
        catch
        {
            foreach (PolicyApp app in apps)
            {
                await app.DisposeAsync().ConfigureAwait(false);
            }

            await deployment.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public PolicyApp App(string policy) => _apps.Single(a => a.Policy == policy);

    /// <summary>
    /// Sets the region's standby's <c>recovery_min_apply_delay</c> (<c>ALTER SYSTEM</c> and a reload, allowed on a hot
    /// standby: the setting is a file, no WAL), waits until the standby shows it and has replayed everything, then
    /// measures the delay a commit really sees (median of <paramref name="probes"/>: commit on the primary → visible on
    /// the standby).
    /// </summary>
    /// <returns>The measured apply delays, in milliseconds.</returns>
    public async Task<List<double>> SetLagAsync(TimeSpan lag, int probes, CancellationToken cancellationToken)
    {
        long ms = (long)lag.TotalMilliseconds;
        await using (var standby = new NpgsqlConnection(Standby))
        {
            await standby.OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(standby, string.Create(CultureInfo.InvariantCulture, $"alter system set recovery_min_apply_delay = '{ms}ms'"), cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(standby, "select pg_reload_conf()", cancellationToken).ConfigureAwait(false);
            await using var show = new NpgsqlCommand("select setting from pg_settings where name = 'recovery_min_apply_delay'", standby);
            var sw = Stopwatch.StartNew();
            string? setting;
            while ((setting = (string?)await show.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false)) != ms.ToString(CultureInfo.InvariantCulture))
            {
                if (sw.Elapsed > TimeSpan.FromSeconds(10))
                {
                    throw new TimeoutException($"The standby of {Region} still shows recovery_min_apply_delay = {setting} ms 10 s after the reload; expected {ms} ms.");
                }

                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
            }
        }

        await CatchUpAsync(lag, cancellationToken).ConfigureAwait(false);
        var measured = new List<double>(probes);
        for (int i = 0; i < probes; i++)
        {
            measured.Add(await ProbeAsync(lag, cancellationToken).ConfigureAwait(false));
        }

        return measured;
    }

    /// <summary>Waits until the standby has replayed everything the primary has flushed (so that a run starts with no backlog).</summary>
    public Task CatchUpAsync(TimeSpan lag, CancellationToken cancellationToken) =>
        ReplicaControl.WaitForCatchUpAsync(Primary, Standby, lag + TimeSpan.FromSeconds(30), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        foreach (PolicyApp app in _apps)
        {
            await app.DisposeAsync().ConfigureAwait(false);
        }

        await Deployment.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>One commit on the primary, then the standby polled back to back until it shows the row; milliseconds.</summary>
    private async Task<double> ProbeAsync(TimeSpan lag, CancellationToken cancellationToken)
    {
        await using var primary = new NpgsqlConnection(Primary);
        await using var standby = new NpgsqlConnection(Standby);
        await primary.OpenAsync(cancellationToken).ConfigureAwait(false);
        await standby.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var insert = new NpgsqlCommand($"insert into {ProbeTable} default values returning id", primary);
        await using var seen = new NpgsqlCommand($"select exists (select 1 from {ProbeTable} where id = $1)", standby);
        long id = (long)(await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        var sw = Stopwatch.StartNew();
        seen.Parameters.Add(new NpgsqlParameter<long> { TypedValue = id });
        while (!(bool)(await seen.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
        {
            if (sw.Elapsed > lag + TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"A probe row committed on the primary was not on the standby of {Region} after {sw.Elapsed.TotalSeconds:0.0} s (lag {lag.TotalMilliseconds:0} ms).");
            }

            // Back to back for the first 20 ms (the lag-0 figure), then at the timer's tick (about 4 ms here).
            if (sw.Elapsed > TimeSpan.FromMilliseconds(20))
            {
                await Task.Delay(1, cancellationToken).ConfigureAwait(false);
            }
        }

        return sw.Elapsed.TotalMilliseconds;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
