using System.Diagnostics;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.PostgresLocal;
using OrleansLsn.Tests.Cluster;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Client;

/// <summary>
/// <see cref="ReadYourWritesSession"/> on the shared cluster against the real primary and both standbys: a read after a
/// write sees it; timeouts throw or fall back to the primary; failures of the tracker call are retried within the
/// deadline. Replay is paused only on the us-east standby, always resumed in <c>finally</c>.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ReadYourWritesSessionTests(ClusterFixture fixture) : ReplicaDataSourcesTestBase(fixture)
{
    [Theory]
    [InlineData(LsnTestCluster.EuWest)]
    [InlineData(LsnTestCluster.UsEast)]
    public async Task WriteThenRead_SeesTheRow_EveryTime(string region)
    {
        string table = await CreateTableAsync("session_ryw_" + region.Replace('-', '_'));
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas);
        for (int i = 1; i <= 20; i++)
        {
            int inserted = await session.ExecuteWriteAsync(async c =>
            {
                await using var insert = new NpgsqlCommand($"insert into {table} values ($1, 'x')", c);
                insert.Parameters.AddWithValue((long)i);
                return await insert.ExecuteNonQueryAsync(Ct);
            }, Ct);
            Assert.Equal(1, inserted);

            await using NpgsqlConnection read = await session.OpenReadConnectionAsync(region, Ct);
            Assert.True(await ScalarAsync<bool>(read, "select pg_is_in_recovery()"), "the read connection is not the region's replica");
            Assert.True(await ScalarAsync<bool>(read, $"select exists(select 1 from {table} where id = $1)", (long)i), $"row {i} not visible on the {region} replica");
        }
    }

    [Fact]
    public async Task RecordWriteAsync_AfterTheCallersOwnCommit_KeepsTheHighestLsn_AndTheReadSeesIt()
    {
        string table = await CreateTableAsync("session_record");
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas);
        await using NpgsqlConnection primary = await OpenAsync(Fixture.Postgres.PrimaryConnectionString);
        await using (NpgsqlTransaction tx = await primary.BeginTransactionAsync(Ct))
        {
            await ExecAsync(primary, $"insert into {table} values (1, 'in a transaction')");
            await Assert.ThrowsAsync<InvalidOperationException>(() => session.RecordWriteAsync(primary, Ct)); // before the commit
            await tx.CommitAsync(Ct);
        }

        Lsn recorded = await session.RecordWriteAsync(primary, Ct);
        Assert.Equal(recorded, session.LastWrite);
        session.RecordWrite(Lsn.Parse("0/1"));                      // an older LSN changes nothing
        Assert.Equal(recorded, session.LastWrite);
        await using NpgsqlConnection read = await session.OpenReadConnectionAsync(LsnTestCluster.EuWest, Ct);
        Assert.True(await ScalarAsync<bool>(read, $"select exists(select 1 from {table} where id = 1)"));
    }

    [Fact]
    public async Task NoWrite_OpensTheReplica_WithoutAnyTrackerCall()
    {
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(Client);
        var session = new ReadYourWritesSession(grains, PrimarySource, Replicas);
        Assert.Null(session.LastWrite);
        foreach (string region in Replicas.Keys)
        {
            await using NpgsqlConnection read = await session.OpenReadConnectionAsync(region, Ct);
            Assert.True(await ScalarAsync<bool>(read, "select pg_is_in_recovery()"));
        }

        Assert.Equal(0, calls.GetGrainCalls);
    }

    [Fact]
    public async Task UnknownRegion_IsRefused_ListingTheConfiguredRegions()
    {
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(Client);
        var session = new ReadYourWritesSession(grains, PrimarySource, Replicas);
        session.RecordWrite(Lsn.Parse("0/1"));
        var error = await Assert.ThrowsAsync<ArgumentException>(() => session.OpenReadConnectionAsync("ap-north", Ct));
        Assert.Equal("region", error.ParamName);
        Assert.Contains("'ap-north'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'eu-west', 'us-east'", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, calls.GetGrainCalls);
    }

    [Fact]
    public async Task PausedReplay_WithThrow_TimesOut_NamingRegionLsnAndReplay_WhileTheOtherRegionReads()
    {
        string table = await CreateTableAsync("session_throw");
        var options = new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromMilliseconds(700), OnTimeout = ReadYourWritesTimeoutPolicy.Throw };
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas, options);
        // The timeout names the replay position, so the region's tracker must have read one before replay stops.
        ILsnTrackerGrain usEast = Client.GetGrain<ILsnTrackerGrain>(LsnTestCluster.UsEast);
        await Wait.UntilAsync(async () => await usEast.GetLastReplay() is not null, TimeSpan.FromSeconds(20), () => "a replay position in us-east", Ct);
        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (1, 'x')"), Ct);
            Lsn written = session.LastWrite!.Value;

            var sw = Stopwatch.StartNew();
            var error = await Assert.ThrowsAsync<ReadYourWritesTimeoutException>(() => session.OpenReadConnectionAsync(LsnTestCluster.UsEast, Ct));
            Assert.True(sw.Elapsed >= options.WaitTimeout, $"gave up after only {sw.Elapsed.TotalMilliseconds} ms");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"gave up only after {sw.Elapsed}");
            Assert.Equal(LsnTestCluster.UsEast, error.Region);
            Assert.Equal(written, error.Lsn);
            Assert.NotNull(error.ReplayLsn);
            Assert.True(error.ReplayLsn < written, $"replay {error.ReplayLsn} is not behind {written}");
            Assert.Equal(options.WaitTimeout, error.Timeout);
            Assert.Contains("'us-east'", error.Message, StringComparison.Ordinal);
            Assert.Contains(written.ToString(), error.Message, StringComparison.Ordinal);
            Assert.Contains(error.ReplayLsn.Value.ToString(), error.Message, StringComparison.Ordinal);
            Assert.IsType<TimeoutException>(error, exactMatch: false);

            // Only us-east is paused: the same session reads its write in eu-west.
            await using NpgsqlConnection euWest = await session.OpenReadConnectionAsync(LsnTestCluster.EuWest, Ct);
            Assert.True(await ScalarAsync<bool>(euWest, $"select exists(select 1 from {table} where id = 1)"));
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    [Fact]
    public async Task PausedReplay_WithUsePrimary_HandsOutThePrimary_WhereTheRowIs()
    {
        string table = await CreateTableAsync("session_usePrimarySource");
        var options = new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromMilliseconds(500), OnTimeout = ReadYourWritesTimeoutPolicy.UsePrimary };
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas, options);
        await ReplicaControl.PauseReplayAsync(Fixture.Postgres.Standby2ConnectionString, Ct);
        try
        {
            await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (7, 'x')"), Ct);
            await using NpgsqlConnection read = await session.OpenReadConnectionAsync(LsnTestCluster.UsEast, Ct);
            Assert.False(await ScalarAsync<bool>(read, "select pg_is_in_recovery()"), "a timed-out read must get the primary, never the stale replica");
            Assert.True(await ScalarAsync<bool>(read, $"select exists(select 1 from {table} where id = 7)"));
        }
        finally
        {
            await ReplicaControl.ResumeReplayAsync(Fixture.Postgres.Standby2ConnectionString, CancellationToken.None);
        }
    }

    [Theory]
    [InlineData("SiloUnavailable")]
    [InlineData("Timeout")]
    [InlineData("ConnectionFailed")]
    [InlineData("GatewayTooBusy")]
    public async Task TrackerCallFailures_AreRetriedWithinTheDeadline_ThenTheReadSeesTheWrite(string failure)
    {
        string table = await CreateTableAsync("session_retry_" + failure.ToLowerInvariant());
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(Client, n => n <= 3 ? Failure(failure, n) : null);
        var session = new ReadYourWritesSession(grains, PrimarySource, Replicas, new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromSeconds(10), UseReplayView = false });
        await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (1, 'x')"), Ct);

        await using NpgsqlConnection read = await session.OpenReadConnectionAsync(LsnTestCluster.EuWest, Ct);
        Assert.Equal(4, calls.WaitCalls);
        Assert.True(await ScalarAsync<bool>(read, "select pg_is_in_recovery()"));
        Assert.True(await ScalarAsync<bool>(read, $"select exists(select 1 from {table} where id = 1)"));
    }

    [Fact]
    public async Task WaitEndingBeforeItsTimeout_ActivationStopped_IsAskedAgain_ThenTheReadSeesTheWrite()
    {
        // A tracker never times a wait out early; an activation that stops ends its waits as TimedOut at once.
        string table = await CreateTableAsync("session_early_timeout");
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(
            Client, n => n <= 2 ? new LsnWaitResult(LsnWaitOutcome.TimedOut, Lsn.Parse("0/1")) : null);
        var session = new ReadYourWritesSession(grains, PrimarySource, Replicas, new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromSeconds(10), UseReplayView = false });
        await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (1, 'x')"), Ct);

        var sw = Stopwatch.StartNew();
        await using NpgsqlConnection read = await session.OpenReadConnectionAsync(LsnTestCluster.UsEast, Ct);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"took {sw.Elapsed}");
        Assert.Equal(3, calls.WaitCalls);
        Assert.True(await ScalarAsync<bool>(read, $"select exists(select 1 from {table} where id = 1)"));
    }

    [Fact]
    public async Task TrackerUnreachableUntilTheDeadline_ThrowsTheTimeout_WithTheLastFailure_OrUsesThePrimary()
    {
        string table = await CreateTableAsync("session_unreachable");
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(Client, n => new SiloUnavailableException("simulated failure " + n));
        var options = new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromMilliseconds(600), RetryInitialDelay = TimeSpan.FromMilliseconds(20), RetryMaxDelay = TimeSpan.FromMilliseconds(100), UseReplayView = false };
        var session = new ReadYourWritesSession(grains, PrimarySource, Replicas, options);
        await session.ExecuteWriteAsync(c => ExecAsync(c, $"insert into {table} values (1, 'x')"), Ct);

        var sw = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<ReadYourWritesTimeoutException>(() => session.OpenReadConnectionAsync(LsnTestCluster.EuWest, Ct));
        Assert.True(sw.Elapsed >= options.WaitTimeout && sw.Elapsed < TimeSpan.FromSeconds(5), $"gave up after {sw.Elapsed}");
        Assert.IsType<SiloUnavailableException>(error.InnerException);
        Assert.Contains("could not be reached", error.Message, StringComparison.Ordinal);
        Assert.Null(error.ReplayLsn);
        Assert.True(calls.WaitCalls >= 3, $"only {calls.WaitCalls} attempts in {options.WaitTimeout}");

        options.OnTimeout = ReadYourWritesTimeoutPolicy.UsePrimary;
        var fallback = new ReadYourWritesSession(grains, PrimarySource, Replicas, options);
        fallback.RecordWrite(session.LastWrite!.Value);
        await using NpgsqlConnection read = await fallback.OpenReadConnectionAsync(LsnTestCluster.EuWest, Ct);
        Assert.False(await ScalarAsync<bool>(read, "select pg_is_in_recovery()"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task RegionWithoutSilos_FailsAtOnce_AndIsNotRetried(bool useReplayView)
    {
        (IGrainFactory grains, InterceptingGrainFactory calls) = InterceptingGrainFactory.Create(Client);
        var replicas = new Dictionary<string, NpgsqlDataSource> { [ClusterFixture.LaterRegion] = EuWestSource };
        var options = new ReadYourWritesOptions { WaitTimeout = TimeSpan.FromSeconds(20), OnTimeout = ReadYourWritesTimeoutPolicy.UsePrimary, UseReplayView = useReplayView };
        var session = new ReadYourWritesSession(grains, PrimarySource, replicas, options);
        await session.ExecuteWriteAsync(c => ExecAsync(c, "select 1"), Ct);

        var sw = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<RegionUnavailableException>(() => session.OpenReadConnectionAsync(ClusterFixture.LaterRegion, Ct));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.Equal(ClusterFixture.LaterRegion, error.Region);
        Assert.Equal(useReplayView ? 0 : 1, calls.WaitCalls);
    }

    [Fact]
    public async Task FailedWrite_StillRecordsThePrimarysPosition_SoWhatItCommittedIsSeen()
    {
        string table = await CreateTableAsync("session_failed_write");
        var session = new ReadYourWritesSession(Client, PrimarySource, Replicas);
        await Assert.ThrowsAsync<PostgresException>(() => session.ExecuteWriteAsync(async c =>
        {
            await ExecAsync(c, $"insert into {table} values (1, 'committed')");
            await ExecAsync(c, $"insert into {table} values (1, 'duplicate key')");
        }, Ct));

        Assert.NotNull(session.LastWrite);
        await using NpgsqlConnection read = await session.OpenReadConnectionAsync(LsnTestCluster.EuWest, Ct);
        Assert.True(await ScalarAsync<bool>(read, $"select exists(select 1 from {table} where id = 1)"));
    }

    private static Exception Failure(string kind, int n) => kind switch
    {
        "SiloUnavailable" => new SiloUnavailableException("simulated failure " + n),
        "Timeout" => new TimeoutException("simulated failure " + n),
        "ConnectionFailed" => new Orleans.Runtime.Messaging.ConnectionFailedException("simulated failure " + n),
        "GatewayTooBusy" => new GatewayTooBusyException(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    [Fact]
    public void InvalidOptionsOrReplicas_AreRefused_NamingEveryProblem()
    {
        var options = new ReadYourWritesOptions
        {
            WaitTimeout = TimeSpan.FromMinutes(11),
            OnTimeout = (ReadYourWritesTimeoutPolicy)7,
            RetryInitialDelay = TimeSpan.Zero,
            CallGrace = TimeSpan.FromSeconds(-1),
        };
        var error = Assert.Throws<ArgumentException>(() => new ReadYourWritesSession(Client, PrimarySource, Replicas, options));
        Assert.Equal("options", error.ParamName);
        foreach (string name in new[] { "WaitTimeout", "OnTimeout", "RetryInitialDelay", "CallGrace" })
        {
            Assert.Contains(name + " must be", error.Message, StringComparison.Ordinal);
        }

        Assert.Throws<ArgumentException>(() => new ReadYourWritesSession(Client, PrimarySource, new Dictionary<string, NpgsqlDataSource>()));
        Assert.Throws<ArgumentException>(() => new ReadYourWritesSession(Client, PrimarySource, Replicas).RecordWrite(Lsn.Invalid));
    }
}
