namespace OrleansLsn.Runtime.Transport;

/// <summary>Limits of one connection.</summary>
internal sealed record ConnectionOptions
{
    /// <summary>The largest frame accepted after the handshake; larger frames close the connection.</summary>
    public int MaxFrameSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>Frames queued for sending before senders wait.</summary>
    public int SendQueueCapacity { get; init; } = 16 * 1024;

    /// <summary>Requests received on this connection and not yet answered before the read loop stops reading (TCP backpressure).</summary>
    public int MaxInboundInFlight { get; init; } = 10_000;
}
