namespace OrleansLsn.Runtime;

/// <summary>Base class of the runtime's own errors (Orleans: <c>OrleansException</c>).</summary>
public class GrainRuntimeException : Exception
{
    /// <summary>Creates the exception.</summary>
    public GrainRuntimeException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public GrainRuntimeException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public GrainRuntimeException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A grain called an observer whose client is not connected to the silo, or disconnected while the call was in
/// flight. Raised at once, without waiting for the response timeout (Orleans: <c>ClientNotAvailableException</c>).
/// </summary>
public sealed class ClientNotAvailableException : GrainRuntimeException
{
    /// <summary>Creates the exception.</summary>
    public ClientNotAvailableException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public ClientNotAvailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ClientNotAvailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The silo could not be reached, or the connection was lost while the call was in flight (Orleans:
/// <c>SiloUnavailableException</c>). The call may or may not have run.
/// </summary>
public sealed class SiloUnavailableException : GrainRuntimeException
{
    /// <summary>Creates the exception.</summary>
    public SiloUnavailableException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public SiloUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public SiloUnavailableException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The silo refused the connection at the handshake: a wrong or missing cluster secret, another cluster id, or an unsupported protocol version.</summary>
public sealed class ClusterConnectionRefusedException : GrainRuntimeException
{
    /// <summary>Creates the exception.</summary>
    public ClusterConnectionRefusedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public ClusterConnectionRefusedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ClusterConnectionRefusedException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The silo has no grain class for the called interface, or the interface there has no such method.</summary>
public sealed class GrainMethodNotFoundException : GrainRuntimeException
{
    /// <summary>Creates the exception.</summary>
    public GrainMethodNotFoundException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public GrainMethodNotFoundException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public GrainMethodNotFoundException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>An argument or a result could not be serialized or deserialized (a type outside the contract, or malformed data).</summary>
public sealed class GrainSerializationException : GrainRuntimeException
{
    /// <summary>Creates the exception.</summary>
    public GrainSerializationException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public GrainSerializationException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public GrainSerializationException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A grain threw an exception whose type the caller does not accept for deserialization. The remote type's name,
/// message and stack trace are kept; no type is created from the name.
/// </summary>
public sealed class RemoteGrainException : GrainRuntimeException
{
    /// <summary>Creates the exception.</summary>
    public RemoteGrainException()
    {
        RemoteTypeName = string.Empty;
    }

    /// <summary>Creates the exception.</summary>
    public RemoteGrainException(string message)
        : base(message)
    {
        RemoteTypeName = string.Empty;
    }

    /// <summary>Creates the exception.</summary>
    public RemoteGrainException(string message, Exception? innerException)
        : base(message, innerException)
    {
        RemoteTypeName = string.Empty;
    }

    /// <summary>Creates the exception for a remote type.</summary>
    public RemoteGrainException(string remoteTypeName, string message)
        : base($"{remoteTypeName}: {message}")
    {
        RemoteTypeName = remoteTypeName;
        RemoteMessage = message;
    }

    /// <summary>The full name of the exception type thrown in the grain.</summary>
    public string RemoteTypeName { get; }

    /// <summary>The message of the exception thrown in the grain.</summary>
    public string? RemoteMessage { get; }
}
