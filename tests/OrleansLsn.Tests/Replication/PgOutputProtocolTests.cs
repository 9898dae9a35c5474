using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// What differs between server versions on the pump's side: the pgoutput protocol it asks for (4 on PostgreSQL 16+,
/// 3 on 15). Runs on every version of the CI matrix (ORLEANSLSN_PG_VERSION), so each version proves its own branch.
/// </summary>
public sealed class PgOutputProtocolTests(PostgresFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Pump_AsksForTheProtocolOfTheServersVersion_AndTheServerStreamsWithIt()
    {
        int major = fixture.ServerMajorVersion;
        int expected = major >= 16 ? 4 : major == 15 ? 3 : 2;
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(Pump_AsksForTheProtocolOfTheServersVersion_AndTheServerStreamsWithIt));
        var logger = new ConnectedLogger();
        ReplicationPump pump = scenario.StartPump(logger: logger);
        var recorder = new BatchRecorder();
        pump.Subscribe(recorder.OnChangesAsync);
        await scenario.WaitStreamingAsync(pump);

        // A row arriving proves the server accepted START_REPLICATION with that proto_version.
        await scenario.InsertRangeAsync(1, 2, "v");
        await Wait.UntilAsync(() => recorder.ConfirmedRows.Count() >= 2, Timeout, () => $"2 rows; got {recorder.ConfirmedRows.Count()}; status {pump.Status}", Ct);

        Assert.NotEmpty(logger.Protocols);
        Assert.All(logger.Protocols, p => Assert.Equal(expected, p));
        Assert.Equal(["1", "2"], recorder.ConfirmedRows.Select(r => r["id"]));
    }

    /// <summary>Keeps the <c>Protocol</c> value of every "streaming" (Connected) event the pump logs.</summary>
    private sealed class ConnectedLogger : ILogger<ReplicationPump>
    {
        private readonly ConcurrentQueue<int> _protocols = new();

        public IReadOnlyList<int> Protocols => [.. _protocols];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (state is IReadOnlyList<KeyValuePair<string, object?>> values &&
                values.FirstOrDefault(v => v.Key == "Protocol").Value is int protocol)
            {
                _protocols.Enqueue(protocol);
            }
        }
    }
}
