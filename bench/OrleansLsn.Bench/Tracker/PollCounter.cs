using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace OrleansLsn.Bench.Tracker;

/// <summary>
/// Counts the tracker's replica queries per region from its own counter <c>orleanslsn.tracker.polls</c> (meter
/// <c>OrleansLsn.Tracker</c>), through a <see cref="MeterListener"/>. Only that instrument is enabled, so the other
/// tracker instruments stay off and cost nothing in the in-process scenarios.
/// </summary>
internal sealed class PollCounter : IDisposable
{
    private const string MeterName = "OrleansLsn.Tracker";
    private const string InstrumentName = "orleanslsn.tracker.polls";
    private const string RegionTag = "orleanslsn.region";

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, StrongBox<long>> _counts = new(StringComparer.Ordinal);

    public PollCounter()
    {
        _listener.InstrumentPublished = static (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeterName && instrument.Name == InstrumentName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>(OnMeasurement);
        _listener.Start();
    }

    /// <summary>Queries the tracker of <paramref name="region"/> has sent since this counter started.</summary>
    public long Count(string region) => _counts.TryGetValue(region, out StrongBox<long>? box) ? Interlocked.Read(ref box.Value) : 0;

    public void Dispose() => _listener.Dispose();

    private void OnMeasurement(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            if (tag.Key == RegionTag && tag.Value is string region)
            {
                Interlocked.Add(ref _counts.GetOrAdd(region, static _ => new StrongBox<long>()).Value, value);
                return;
            }
        }
    }
}
