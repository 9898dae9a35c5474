namespace OrleansLsn.PostgresLocal;

/// <summary>A local PostgreSQL server could not be found, started or stopped. The message says which step failed and why.</summary>
public sealed class LocalPostgresException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LocalPostgresException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public LocalPostgresException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public LocalPostgresException()
    {
    }
}
