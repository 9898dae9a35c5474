using System.Diagnostics.Metrics;
using OrleansLsn.Replication;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

public sealed class ReplicationMetricsTests(PostgresFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Instruments_ReportChangesDeliveriesAndBacklog_TaggedWithTheSlot()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(fixture.PrimaryConnectionString, nameof(Instruments_ReportChangesDeliveriesAndBacklog_TaggedWithTheSlot));
        var measurements = new List<(string Name, long Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "OrleansLsn.Replication")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "orleanslsn.slot" && (string?)tag.Value == scenario.Slot)
                {
                    lock (measurements)
                    {
                        measurements.Add((instrument.Name, value));
                    }
                }
            }
        });
        listener.Start();

        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();
        await scenario.InsertRangeAsync(1, 3);
        await Wait.UntilAsync(() => recorder.Confirmed.Count == 1, TimeSpan.FromSeconds(30), () => "the batch", Ct);
        recorder.Hold();
        await scenario.InsertRangeAsync(4, 4);
        await scenario.InsertRangeAsync(5, 5);
        await Wait.UntilAsync(() => pump.Status.BacklogBatches == 2, TimeSpan.FromSeconds(30), () => $"two held batches; {pump.Status}", Ct);
        listener.RecordObservableInstruments();

        (string Name, long Value)[] seen;
        lock (measurements)
        {
            seen = measurements.ToArray();
        }

        Assert.Equal(5, seen.Where(m => m.Name == "orleanslsn.replication.changes").Sum(m => m.Value));
        Assert.Equal(1, seen.Where(m => m.Name == "orleanslsn.replication.batches.delivered").Sum(m => m.Value));
        Assert.Contains(seen, m => m.Name == "orleanslsn.replication.backlog.batches" && m.Value == 2);
        Assert.Contains(seen, m => m.Name == "orleanslsn.replication.backlog.bytes" && m.Value > 0);
        Assert.Contains(seen, m => m.Name == "orleanslsn.replication.paused" && m.Value == 0);
        recorder.Release();
    }
}
