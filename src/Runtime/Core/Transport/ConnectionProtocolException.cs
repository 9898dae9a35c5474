namespace OrleansLsn.Runtime.Transport;

/// <summary>The peer broke the frame protocol; the connection is closed.</summary>
internal sealed class ConnectionProtocolException : Exception
{
    public ConnectionProtocolException()
    {
    }

    public ConnectionProtocolException(string message)
        : base(message)
    {
    }

    public ConnectionProtocolException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
