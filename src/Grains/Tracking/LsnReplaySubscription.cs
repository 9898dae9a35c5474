using System.Threading.Channels;

namespace OrleansLsn.Tracking;

/// <summary>
/// A subscription to every advance of a tracker's replay LSN. Updates are coalesced: the reader sees the newest value
/// and a slow reader skips values instead of queueing them (the buffer holds one). Dispose to unsubscribe.
/// </summary>
public sealed class LsnReplaySubscription : IDisposable
{
    private readonly LsnTracker _owner;
    private readonly Channel<Lsn> _channel = Channel.CreateBounded<Lsn>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = false, SingleReader = false });

    internal LsnReplaySubscription(LsnTracker owner) => _owner = owner;

    /// <summary>The replay LSNs, newest wins. Completes when the subscription is disposed or the tracker stops.</summary>
    public ChannelReader<Lsn> Updates => _channel.Reader;

    internal void Publish(Lsn replay) => _channel.Writer.TryWrite(replay);

    internal void Complete() => _channel.Writer.TryComplete();

    /// <inheritdoc />
    public void Dispose()
    {
        _owner.Unsubscribe(this);
        Complete();
    }
}
