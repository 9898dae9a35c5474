using Npgsql;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// <see cref="ReplicationPump.WaitForSlotAsync"/>: a subscriber added once it returns gets every change committed
/// afterwards, also on a slot that did not exist a moment before; a slot that cannot be made ready says why.
/// </summary>
public sealed class SlotReadinessTests(PostgresFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task WaitForSlot_OnAFreshSlot_ThenSubscribeAndCommitAtOnce_DeliversTheCommit_EveryRound()
    {
        const int Rounds = 20;
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(WaitForSlot_OnAFreshSlot_ThenSubscribeAndCommitAtOnce_DeliversTheCommit_EveryRound));
        for (int round = 1; round <= Rounds; round++)
        {
            Assert.Null(await scenario.ActivePidAsync());
            Assert.Equal(Lsn.Invalid, await scenario.ConfirmedFlushAsync());
            ReplicationPump pump = scenario.StartPump();
            await pump.WaitForSlotAsync(Timeout, Ct);
            Assert.True(pump.IsSlotReady);
            var recorder = new BatchRecorder();
            await using (ReplicationSubscription subscription = pump.Subscribe(recorder.OnChangesAsync))
            {
                // No wait for "streaming": the commit follows the subscription at once.
                await scenario.InsertRangeAsync(round, round, "round");
                Lsn consistentPoint = await scenario.ConfirmedFlushAsync();
                Assert.NotEqual(Lsn.Invalid, consistentPoint);
                string id = round.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await Wait.UntilAsync(() => recorder.ConfirmedRows.Any(r => r["id"] == id), Timeout,
                    () => $"round {round}: the row committed right after subscribing (slot created at {consistentPoint}); status {pump.Status}", Ct);
            }

            await pump.DisposeAsync();
            await scenario.DropSlotAsync();
        }
    }

    [Fact]
    public async Task WaitForSlot_PublicationMissingWithCreationOff_FailsAtOnce_NamingThePublication()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(WaitForSlot_PublicationMissingWithCreationOff_FailsAtOnce_NamingThePublication));
        ReplicationPump pump = scenario.StartPump(o => o.CreatePublication = false);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        ReplicationException e = await Assert.ThrowsAsync<ReplicationException>(() => pump.WaitForSlotAsync(Timeout, Ct));
        Assert.Equal(ReplicationErrorKind.PublicationMissing, e.Kind);
        Assert.Contains($"publication \"{scenario.Publication}\" does not exist", e.Message, StringComparison.Ordinal);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"failed after {sw.Elapsed}, not at the first attempt");
        Assert.False(pump.IsSlotReady);

        // The pump keeps trying: once the publication exists, the slot becomes ready.
        await scenario.ExecuteAsync($"create publication {scenario.Publication} for table {scenario.Table}");
        await pump.WaitForSlotAsync(Timeout, Ct);
        Assert.NotEqual(Lsn.Invalid, await scenario.ConfirmedFlushAsync());
    }

    [Fact]
    public async Task WaitForSlot_WhileATransactionHoldsSlotCreation_TimesOutSayingSo_ThenSucceedsOnceItEnds()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(WaitForSlot_WhileATransactionHoldsSlotCreation_TimesOutSayingSo_ThenSucceedsOnceItEnds));
        await using var holder = new NpgsqlConnection(fixture.PrimaryConnectionString);
        await holder.OpenAsync(Ct);
        await using NpgsqlTransaction transaction = await holder.BeginTransactionAsync(Ct);
        await using (var write = new NpgsqlCommand($"insert into {scenario.Table} values (0, 'open')", holder, transaction))
        {
            // A transaction with an xid: creating a logical slot waits for it to end.
            await write.ExecuteNonQueryAsync(Ct);
        }

        ReplicationPump pump = scenario.StartPump();
        ReplicationException e = await Assert.ThrowsAsync<ReplicationException>(() => pump.WaitForSlotAsync(TimeSpan.FromSeconds(1), Ct));
        Assert.Contains("was not ready within 1 s", e.Message, StringComparison.Ordinal);
        Assert.Contains("transactions running on the primary", e.Message, StringComparison.Ordinal);
        Assert.False(pump.IsSlotReady);

        Task ready = pump.WaitForSlotAsync(Timeout, Ct);
        await transaction.CommitAsync(Ct);
        await ready;
        Assert.True(pump.IsSlotReady);
    }
}
