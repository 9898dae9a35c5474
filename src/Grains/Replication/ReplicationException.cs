namespace OrleansLsn.Replication;

/// <summary>A failure of the replication pump with a kind callers can act on (see <see cref="ReplicationStatus.LastErrorKind"/>).</summary>
public sealed class ReplicationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ReplicationException(ReplicationErrorKind kind, string message, bool isTerminal = false, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
        IsTerminal = isTerminal;
    }

    /// <summary>Creates an <see cref="ReplicationErrorKind.Unexpected"/> error.</summary>
    public ReplicationException()
        : this(ReplicationErrorKind.Unexpected, "Replication failed.")
    {
    }

    /// <summary>Creates an <see cref="ReplicationErrorKind.Unexpected"/> error.</summary>
    public ReplicationException(string message)
        : this(ReplicationErrorKind.Unexpected, message)
    {
    }

    /// <summary>Creates an <see cref="ReplicationErrorKind.Unexpected"/> error.</summary>
    public ReplicationException(string message, Exception innerException)
        : this(ReplicationErrorKind.Unexpected, message, false, innerException)
    {
    }

    /// <summary>What went wrong.</summary>
    public ReplicationErrorKind Kind { get; }

    /// <summary>Whether retrying cannot help (the pump stops and reports <see cref="ReplicationState.Failed"/>).</summary>
    public bool IsTerminal { get; }
}
