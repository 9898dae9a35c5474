using Npgsql;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// <see cref="ReplicationPumpOptions.RememberSubscribers"/>: a new pump of a slot (the grain reactivated after its silo
/// died) holds the slot for every subscriber of the previous one, so a subscriber that comes back later than another
/// misses nothing the other confirmed meanwhile; one that does not come back within the rejoin timeout is forgotten.
/// The previous pump is disposed without its subscribers unsubscribing, as when its process dies.
/// </summary>
public sealed class SubscriberRegistryTests(PostgresFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ALaterRejoiningSubscriber_GetsWhatTheFirstOneBackConfirmed_WhileTheSlotIsHeldForIt()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(ALaterRejoiningSubscriber_GetsWhatTheFirstOneBackConfirmed_WhileTheSlotIsHeldForIt));
        (BatchRecorder first, BatchRecorder late) = await RunFailoverAsync(scenario, remember: true, TimeSpan.FromSeconds(30));
        Assert.Equal(Ids(4, 8), RowIds(first));
        Assert.Equal(Ids(4, 8), RowIds(late));
    }

    [Fact]
    public async Task WithoutRememberedSubscribers_ALaterRejoiningSubscriber_MissesWhatTheFirstOneConfirmed()
    {
        // The control: what the registry prevents, so the test above can fail.
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(WithoutRememberedSubscribers_ALaterRejoiningSubscriber_MissesWhatTheFirstOneConfirmed));
        (BatchRecorder first, BatchRecorder late) = await RunFailoverAsync(scenario, remember: false, TimeSpan.FromSeconds(30));
        Assert.Equal(Ids(4, 8), RowIds(first));
        Assert.DoesNotContain("4", RowIds(late));
    }

    [Fact]
    public async Task ASubscriberNotBackWithinTheRejoinTimeout_IsForgotten_AndNoLongerHoldsTheSlot()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(ASubscriberNotBackWithinTheRejoinTimeout_IsForgotten_AndNoLongerHoldsTheSlot));
        ReplicationPump before = scenario.StartPump(o => Remember(o, TimeSpan.FromSeconds(1)));
        await before.WaitForSlotAsync(Timeout, Ct);
        await before.SubscribeAsync(new BatchRecorder().OnChangesAsync, "stays", Ct);
        await before.SubscribeAsync(new BatchRecorder().OnChangesAsync, "gone", Ct);
        Assert.Equal(["gone", "stays"], await RememberedAsync(scenario));
        await before.DisposeAsync();

        ReplicationPump after = scenario.StartPump(o => Remember(o, TimeSpan.FromSeconds(1)));
        await after.WaitForSlotAsync(Timeout, Ct);
        Assert.Equal(2, after.AwaitedSubscribers);
        var stays = new BatchRecorder();
        await using ReplicationSubscription subscription = await after.SubscribeAsync(stays.OnChangesAsync, "stays", Ct);
        Assert.Equal(1, after.AwaitedSubscribers);
        Lsn end = await scenario.InsertRangeAsync(1, 1);
        await Wait.UntilAsync(() => stays.ConfirmedRows.Any(), Timeout, () => "the row reached the subscriber that came back", Ct);
        await Wait.UntilAsync(() => after.AwaitedSubscribers == 0, Timeout, () => "the subscriber that did not come back forgotten after 1 s", Ct);
        await Wait.UntilAsync(() => after.FlushedLsn >= stays.Confirmed[^1].Batch.EndLsn, Timeout, () => $"the flush position past the row ({after.FlushedLsn}, wrote up to {end})", Ct);
        await Wait.UntilAsync(async () => (await RememberedAsync(scenario)).SequenceEqual(["stays"]), Timeout, () => "only 'stays' remembered", Ct);
        Assert.Equal(0, after.Status.AwaitedSubscribers);

        // Forgetting (an unsubscribe) removes it too.
        await after.ForgetSubscriberAsync("stays", Ct);
        Assert.Empty(await RememberedAsync(scenario));
    }

    /// <summary>
    /// Two subscribers, rows 1-3 confirmed by both; the pump goes away (as a dead silo's); rows 4-6; a new pump; the first
    /// subscriber comes back and confirms 4-8; only then the second comes back.
    /// </summary>
    private static async Task<(BatchRecorder First, BatchRecorder Late)> RunFailoverAsync(ReplicationScenario scenario, bool remember, TimeSpan rejoinTimeout)
    {
        ReplicationPump before = scenario.StartPump(o => Remember(o, rejoinTimeout, remember));
        await before.WaitForSlotAsync(Timeout, Ct);
        var a = new BatchRecorder();
        var b = new BatchRecorder();
        await before.SubscribeAsync(a.OnChangesAsync, "a", Ct);
        await before.SubscribeAsync(b.OnChangesAsync, "b", Ct);
        await scenario.InsertRangeAsync(1, 3);
        await Wait.UntilAsync(() => a.ConfirmedRows.Count() == 3 && b.ConfirmedRows.Count() == 3, Timeout, () => "rows 1-3 confirmed by both", Ct);
        Lsn confirmed = a.Confirmed[^1].Batch.EndLsn;
        await Wait.UntilAsync(async () => await scenario.ConfirmedFlushAsync() >= confirmed, Timeout, () => $"the slot acknowledged up to {confirmed}", Ct);
        await before.DisposeAsync();

        await scenario.InsertRangeAsync(4, 6);
        ReplicationPump after = scenario.StartPump(o => Remember(o, rejoinTimeout, remember));
        await after.WaitForSlotAsync(Timeout, Ct);
        Assert.Equal(remember ? 2 : 0, after.AwaitedSubscribers);
        var first = new BatchRecorder();
        await using ReplicationSubscription firstBack = await after.SubscribeAsync(first.OnChangesAsync, "a", Ct);
        await scenario.InsertRangeAsync(7, 8);
        await Wait.UntilAsync(() => first.ConfirmedRows.Count() >= 5, Timeout, () => $"rows 4-8 confirmed by the first one back, have {string.Join(",", RowIds(first))}", Ct);
        Lsn lastOfFirst = first.Confirmed[^1].Batch.EndLsn;
        if (remember)
        {
            // The late one still holds the slot: nothing past the restart is acknowledged.
            Assert.True(after.ConfirmedLsn < lastOfFirst, $"acknowledged up to {after.ConfirmedLsn} while 'b' was not back ({lastOfFirst} confirmed by 'a')");
        }
        else
        {
            await Wait.UntilAsync(() => after.ConfirmedLsn >= lastOfFirst, Timeout, () => $"acknowledged up to {lastOfFirst} without 'b'", Ct);
        }

        var late = new BatchRecorder();
        await using ReplicationSubscription lateBack = await after.SubscribeAsync(late.OnChangesAsync, "b", Ct);
        Assert.Equal(0, after.AwaitedSubscribers);
        await scenario.InsertRangeAsync(9, 9);
        await Wait.UntilAsync(() => late.ConfirmedRows.Any(r => r["id"] == "9"), Timeout, () => "row 9 at the late one", Ct);
        await Wait.UntilAsync(() => first.ConfirmedRows.Any(r => r["id"] == "9"), Timeout, () => "row 9 at the first one", Ct);
        return (first, late);
    }

    private static void Remember(ReplicationPumpOptions options, TimeSpan rejoinTimeout, bool remember = true)
    {
        options.RememberSubscribers = remember;
        options.RejoinTimeout = rejoinTimeout;
    }

    private static async Task<string[]> RememberedAsync(ReplicationScenario scenario)
    {
        await using var connection = new NpgsqlConnection(scenario.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("select subscriber from orleanslsn_replication_subscribers where slot_name = $1 order by subscriber", connection);
        command.Parameters.AddWithValue(scenario.Slot);
        var names = new List<string>();
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            names.Add(reader.GetString(0));
        }

        return [.. names];
    }

    /// <summary>The rows a subscriber got before row 9 (written last, to see that both stream again).</summary>
    private static string[] RowIds(BatchRecorder recorder) => [.. recorder.ConfirmedRows.Select(r => r["id"]!).Where(id => id != "9").Distinct()];

    private static string[] Ids(int from, int to) => [.. Enumerable.Range(from, to - from + 1).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))];
}
