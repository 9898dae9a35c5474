namespace OrleansLsn.Runtime.Transport;

/// <summary>Receives the frames of a connection after its handshake.</summary>
internal interface IFrameHandler
{
    /// <summary>
    /// One frame body (kind byte first), valid only during the call. Throwing closes the connection: do it only for
    /// frames that are malformed as frames; a request that fails gets an error response instead.
    /// </summary>
    void OnFrame(Connection connection, ReadOnlySpan<byte> frame);

    /// <summary>The connection closed; <paramref name="error"/> says why, or is null for an orderly close. Called once.</summary>
    void OnClosed(Connection connection, Exception? error);
}
