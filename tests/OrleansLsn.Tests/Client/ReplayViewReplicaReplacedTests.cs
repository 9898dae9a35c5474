using Npgsql;
using Orleans.TestingHost;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// The replica behind a region's address is replaced by one that is behind: the tracker reconnects, sees the lower
/// position, and the client's view follows it down, so a write the old replica had is not Ready until the new one has
/// replayed it. A cluster of its own (region eu-west) whose replica is a TCP proxy, first to the first standby, then to
/// the second one with replay paused. Runs with the tests that pause standbys.
/// </summary>
[Collection(StandbyControlCollection.Name)]
public sealed class ReplayViewReplicaReplacedTests(PostgresFixture postgres)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ReplicaReplacedByOneBehind_TheViewFollowsDown_AndIsNotReadyUntilTheNewReplicaHasTheWrite()
    {
        Assert.True(postgres.HasSecondStandby, "this test needs a second standby to replace the first with");
        var first = new NpgsqlConnectionStringBuilder(postgres.StandbyConnectionString);
        var second = new NpgsqlConnectionStringBuilder(postgres.Standby2ConnectionString);
        await using var proxy = new TcpFaultProxy(Address(first.Host!), first.Port);
        string throughProxy = new NpgsqlConnectionStringBuilder(postgres.StandbyConnectionString) { Host = "127.0.0.1", Port = proxy.Port }.ConnectionString;
        await using InProcessTestCluster cluster = await LsnTestCluster.StartAsync(postgres, [LsnTestCluster.EuWest], [], settings =>
            settings["OrleansLsn:ReplicaConnectionString"] = throughProxy);
        await using var views = new ReplayViews(cluster.Client, new ReplayViewOptions { StaleAfter = TimeSpan.FromMilliseconds(300) });
        ReplayView view = views.Get(LsnTestCluster.EuWest);

        await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
        await primary.OpenAsync(Ct);
        await using (var create = new NpgsqlCommand("drop table if exists v_replaced; create table v_replaced(id int primary key)", primary))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        await ReplicaControl.WaitForCatchUpAsync(postgres.PrimaryConnectionString, postgres.Standby2ConnectionString, Deadline, Ct);
        await ReplicaControl.PauseReplayAsync(postgres.Standby2ConnectionString, Ct);
        try
        {
            await using (var insert = new NpgsqlCommand("insert into v_replaced values (1)", primary))
            {
                await insert.ExecuteNonQueryAsync(Ct);
            }

            Lsn written = await PrimaryLsn.GetCurrentInsertLsnAsync(primary, Ct);
            Assert.Equal(LsnWaitOutcome.Ready, (await view.WaitAsync(written, Deadline, Ct)).Outcome);
            // A wait can also be answered by a pull (RequestAndAwait) while the first pushes are late; the view's own
            // position only ever comes from the tracker's states.
            await Wait.UntilAsync(() => view.Covers(written), Deadline, () => $"the view to reach {written} (it says {view.Replay})", Ct);

            // The address now leads to the second standby, paused before the write; the tracker's connection is cut.
            proxy.Retarget(Address(second.Host!), second.Port);
            proxy.DropConnections();
            await Wait.UntilAsync(() => !view.Covers(written), Deadline, () => $"the view to follow the tracker down below {written} (it says {view.Replay})", Ct);
            Assert.True(view.Replay < written, $"view at {view.Replay}, the write at {written}");

            LsnWaitResult notYet = await view.WaitAsync(written, TimeSpan.FromMilliseconds(500), Ct);
            Assert.Equal(LsnWaitOutcome.TimedOut, notYet.Outcome);
            await using (var replica = new NpgsqlConnection(postgres.Standby2ConnectionString))
            {
                await replica.OpenAsync(Ct);
                await using var exists = new NpgsqlCommand("select exists(select 1 from v_replaced where id = 1)", replica);
                Assert.False((bool)(await exists.ExecuteScalarAsync(Ct))!, "the paused standby should not have the row yet");
            }

            // Replay resumes on the new replica: the wait is Ready, and the row is there.
            Task<LsnWaitResult> pending = view.WaitAsync(written, Deadline, Ct).AsTask();
            await ReplicaControl.ResumeReplayAsync(postgres.Standby2ConnectionString, Ct);
            Assert.Equal(LsnWaitOutcome.Ready, (await Wait.ForAsync(pending, Deadline, "the wait after replay resumed")).Outcome);
            await using (var replica = new NpgsqlConnection(postgres.Standby2ConnectionString))
            {
                await replica.OpenAsync(Ct);
                await using var exists = new NpgsqlCommand("select exists(select 1 from v_replaced where id = 1)", replica);
                Assert.True((bool)(await exists.ExecuteScalarAsync(Ct))!);
            }
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    private static string Address(string host) => host is "localhost" ? "127.0.0.1" : host;
}
