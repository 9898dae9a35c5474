namespace OrleansLsn.Membership;

/// <summary>
/// The membership schema is missing or out of date and the connection's role may not create or change it (PostgreSQL
/// refused with <c>42501</c> insufficient privilege). The message names the database, the role and what to do; it never
/// holds a connection string.
/// </summary>
public sealed class MembershipSchemaException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MembershipSchemaException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a generic message.</summary>
    public MembershipSchemaException()
        : this("The Orleans membership schema could not be applied.")
    {
    }

    /// <summary>Creates the exception.</summary>
    public MembershipSchemaException(string message)
        : this(message, null)
    {
    }
}
