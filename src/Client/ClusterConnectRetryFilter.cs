using System.Globalization;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Runtime.Messaging;

namespace OrleansLsn.Client;

/// <summary>
/// Decides, for Orleans, whether a failed connection attempt is retried: until <see cref="ClientConnectionOptions.ConnectTimeout"/>
/// for failures that time may cure (no gateway yet, a gateway that does not answer), never for a refused certificate.
/// When it gives up it throws <see cref="ClusterConnectException"/>, whose message says what the membership database
/// holds for this cluster id and which certificate was refused by whom, instead of Orleans' retries without end.
/// </summary>
internal sealed partial class ClusterConnectRetryFilter(
    IOptions<OrleansLsnClientOptions> options,
    TimeProvider time,
    ILogger<ClusterConnectRetryFilter> logger,
    RefusedCertificates? refused = null,
    ClusterCertificates? certificates = null) : IClientConnectionRetryFilter
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);

    /// <summary>A membership query that takes longer than this is reported as such.</summary>
    private static readonly TimeSpan DiagnosisTimeout = TimeSpan.FromSeconds(5);

    private readonly object _lock = new();
    private long _started;
    private long _lastCall;
    private TimeSpan _delay = FirstDelay;
    private int _attempts;
    private int _handshakeFailures;
    private string? _lastTlsFailure;

    public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
    {
        OrleansLsnClientOptions o = options.Value;
        TimeSpan timeout = o.Client.ConnectTimeout;
        TimeSpan elapsed;
        TimeSpan delay;
        int attempt;
        lock (_lock)
        {
            long now = time.GetTimestamp();
            // A later start of the same client (after a failed one) gets its own deadline.
            if (_started == 0 || time.GetElapsedTime(_lastCall, now) > MaxDelay + timeout)
            {
                _started = now;
                _delay = FirstDelay;
                _attempts = 0;
                _handshakeFailures = 0;
                _lastTlsFailure = null;
            }

            _lastCall = now;
            attempt = ++_attempts;
            elapsed = time.GetElapsedTime(_started, now);
            delay = _delay;
            _delay = TimeSpan.FromTicks(Math.Min(_delay.Ticks * 2, MaxDelay.Ticks));
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return false;
        }

        if (DescribeTlsFailure(exception, o, out bool certain) is { } tls)
        {
            // Retrying cannot change a certificate: say which one, and stop. A connection the gateway ended while setting it
            // up may also be a silo going down at that moment: that is given one more attempt.
            Volatile.Write(ref _lastTlsFailure, tls);
            if (certain || Interlocked.Increment(ref _handshakeFailures) >= 2)
            {
                throw Fail(o, $"{tls} (after {attempt} attempt(s), {elapsed.TotalSeconds:0.0} s).", exception);
            }
        }

        if (exception is not (OrleansMessageRejectionException or ConnectionFailedException))
        {
            // As Orleans' own filter: other failures are not retried, and reach the caller unchanged.
            return false;
        }

        TimeSpan left = timeout - elapsed;
        if (left <= TimeSpan.Zero)
        {
            string found = Volatile.Read(ref _lastTlsFailure) ?? await DescribeMembershipAsync(o, exception, cancellationToken).ConfigureAwait(false);
            throw Fail(o, string.Create(CultureInfo.InvariantCulture, $"{found} (gave up after {attempt} attempt(s) in {elapsed.TotalSeconds:0.0} s, {OrleansLsnClientOptions.SectionName}:Client:ConnectTimeout)."), exception);
        }

        delay = delay < left ? delay : left;
        Log.Retrying(logger, o.ClusterId, attempt, delay.TotalMilliseconds, left.TotalSeconds, exception.GetType().Name + ": " + exception.Message);
        await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private static ClusterConnectException Fail(OrleansLsnClientOptions o, string reason, Exception inner)
    {
        string database = DescribeDatabase(o.EffectiveMembershipConnectionString);
        return new ClusterConnectException(
            $"Could not connect to the Orleans cluster '{o.ClusterId}' (service '{o.ServiceId}'; {OrleansLsnClientOptions.SectionName}:ClusterId), membership in {database}: {reason}",
            o.ClusterId,
            database,
            inner);
    }

    /// <summary>Which side refused which certificate, or <see langword="null"/> when the failure is not a TLS one.</summary>
    /// <remarks>
    /// Orleans reports a failed handshake as <c>ConnectionAbortedException: Connection initialization failed</c>, without
    /// the TLS error: this client's own refusal is known from its validation callback; without one, a connection that
    /// failed in its initialization while TLS is on was refused by the gateway (or the two sides disagree on TLS).
    /// </remarks>
    private string? DescribeTlsFailure(Exception exception, OrleansLsnClientOptions o, out bool certain)
    {
        certain = true;
        string ca = $"{OrleansLsnClientOptions.SectionName}:Tls:CaCertificatePath";
        if (refused?.Take() is { } gateway)
        {
            return $"this client refused the gateway's certificate ({gateway}): it does not chain to the CA in {ca} ('{o.Tls.CaCertificatePath}'). Give the client the CA that signed the silos' certificates";
        }

        // With TLS 1.3 the gateway checks the client's certificate after the client finished its side of the handshake;
        // refusing it, the gateway closes the connection before Orleans' preamble ("Connection terminated prematurely").
        bool handshake = Chain(exception).Any(e => e is AuthenticationException
            || (e is Microsoft.AspNetCore.Connections.ConnectionAbortedException && e.Message.Contains("initialization", StringComparison.OrdinalIgnoreCase))
            || (e is InvalidOperationException && e.Message.Contains("terminated prematurely", StringComparison.OrdinalIgnoreCase)));
        if (!handshake)
        {
            return null;
        }

        certain = false;
        return o.Tls.Mode == ClusterTlsMode.Disabled
            ? $"the gateway ended the connection while it was being set up: this client has TLS off ({OrleansLsnClientOptions.SectionName}:Tls:Mode=Disabled); do the silos require it? ({Innermost(exception).Message})"
            : $"the gateway refused this client's certificate ('{o.Tls.CertificatePath}', {(certificates is null ? "not loaded" : RefusedCertificates.Describe(certificates.Certificate))}): it ended every connection while setting it up, as a silo does with a certificate that is not signed by its own CA ({ca} on the silos) or not within its validity ({Innermost(exception).Message})";
    }

    /// <summary>What the membership database holds for this cluster id: the evidence an operator needs first.</summary>
    private static async Task<string> DescribeMembershipAsync(OrleansLsnClientOptions o, Exception exception, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(DiagnosisTimeout);
        try
        {
            await using var connection = new NpgsqlConnection(o.EffectiveMembershipConnectionString);
            await connection.OpenAsync(timeout.Token).ConfigureAwait(false);
            var gateways = new List<string>();
            await using (var command = new NpgsqlCommand("SELECT \"Address\", \"ProxyPort\" FROM orleanslsn_membership_gateways($1, 3)", connection))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = o.ClusterId });
                await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(timeout.Token).ConfigureAwait(false);
                while (await reader.ReadAsync(timeout.Token).ConfigureAwait(false))
                {
                    gateways.Add(string.Create(CultureInfo.InvariantCulture, $"{reader.GetString(0)}:{reader.GetInt32(1)}"));
                }
            }

            if (gateways.Count > 0)
            {
                return $"the membership table lists {gateways.Count} active gateway(s) for cluster id '{o.ClusterId}' ({string.Join(", ", gateways)}), but none accepted a connection; last error: {Innermost(exception).Message}";
            }

            return $"the membership table lists no active gateway for cluster id '{o.ClusterId}'; {await DescribeOtherClustersAsync(connection, o.ClusterId, timeout.Token).ConfigureAwait(false)}";
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedFunction || e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return "that database has no OrleansLsn membership schema (orleanslsn_membership_gateways is missing): is it the cluster's membership database?";
        }
        catch (PostgresException e)
        {
            return $"the membership database refused the gateway query ({e.SqlState}: {e.MessageText})";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"the membership database did not answer within {DiagnosisTimeout.TotalSeconds:0} s";
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException or IOException)
        {
            return $"the membership database cannot be reached ({e.GetType().Name}: {e.Message})";
        }
    }

    /// <summary>Cluster ids that do have active gateways there, where the role may read the table (a client role may not).</summary>
    private static async Task<string> DescribeOtherClustersAsync(NpgsqlConnection connection, string clusterId, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = new NpgsqlCommand(
                "SELECT deployment_id, count(*)::int FROM orleanslsn_membership_silo WHERE status = 3 AND proxy_port > 0 GROUP BY deployment_id ORDER BY deployment_id",
                connection);
            var others = new List<string>();
            await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                others.Add(string.Create(CultureInfo.InvariantCulture, $"'{reader.GetString(0)}' ({reader.GetInt32(1)})"));
            }

            return others.Count == 0
                ? "no cluster has an active gateway there: are the silos running, and do they use this membership database?"
                : $"cluster ids with active gateways there: {string.Join(", ", others)}. Is {OrleansLsnClientOptions.SectionName}:ClusterId the silos' cluster id?";
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            return $"(this role may not list other clusters' ids). Are the silos running with cluster id '{clusterId}' and this membership database?";
        }
    }

    internal static string DescribeDatabase(string connectionString)
    {
        try
        {
            var b = new NpgsqlConnectionStringBuilder(connectionString);
            return string.Create(CultureInfo.InvariantCulture, $"{b.Host}:{b.Port}/{b.Database ?? b.Username} as {b.Username ?? "(default user)"}");
        }
        catch (ArgumentException)
        {
            return "(an invalid connection string)";
        }
    }

    private static IEnumerable<Exception> Chain(Exception e)
    {
        for (Exception? current = e; current is not null; current = current.InnerException)
        {
            yield return current;
            if (current is AggregateException aggregate)
            {
                foreach (Exception inner in aggregate.InnerExceptions.SelectMany(Chain))
                {
                    yield return inner;
                }
            }
        }
    }

    private static Exception Innermost(Exception e) => Chain(e).Last();

    private static partial class Log
    {
        [LoggerMessage(ClientEventIds.ConnectRetrying, LogLevel.Information, "Connecting to cluster {ClusterId}: attempt {Attempt} failed, retrying in {DelayMs} ms ({LeftSeconds:0.#} s left): {Error}")]
        internal static partial void Retrying(ILogger logger, string clusterId, int attempt, double delayMs, double leftSeconds, string error);
    }
}
