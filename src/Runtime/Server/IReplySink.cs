namespace OrleansLsn.Runtime;

/// <summary>Where the response to a request goes: a client connection, or the silo itself for grain-to-grain calls.</summary>
internal interface IReplySink
{
    /// <summary>Sends a completed response frame; the sink owns it from here.</summary>
    void Reply(Serialization.FrameBuffer frame);

    /// <summary>The request is finished (answered, or one-way and run); releases its backpressure slot.</summary>
    void Done();
}
