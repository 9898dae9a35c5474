namespace OrleansLsn.Client;

/// <summary>
/// The client could not connect to its cluster within <c>OrleansLsn:Client:ConnectTimeout</c>, or a certificate was
/// refused. The message names the cluster id, the membership database (host, port, database and user; never a
/// password) and what was found: no active gateway of this cluster id (and, where the role may read them, the cluster ids
/// that do have gateways there), gateways that did not accept a connection, or which side refused which certificate.
/// The inner exception is Orleans' own.
/// </summary>
public sealed class ClusterConnectException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ClusterConnectException(string message, string clusterId, string membershipDatabase, Exception? innerException)
        : base(message, innerException)
    {
        ClusterId = clusterId;
        MembershipDatabase = membershipDatabase;
    }

    /// <summary>Creates an exception with only a message.</summary>
    public ClusterConnectException()
        : this("Could not connect to the cluster.", "", "", null)
    {
    }

    /// <summary>Creates an exception with only a message.</summary>
    public ClusterConnectException(string message)
        : this(message, "", "", null)
    {
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public ClusterConnectException(string message, Exception innerException)
        : this(message, "", "", innerException)
    {
    }

    /// <summary>The cluster id the client looked for (<c>OrleansLsn:ClusterId</c>).</summary>
    public string ClusterId { get; }

    /// <summary>The membership database, as <c>host:port/database as user</c>.</summary>
    public string MembershipDatabase { get; }
}
