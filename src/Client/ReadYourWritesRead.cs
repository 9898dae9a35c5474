using Npgsql;

namespace OrleansLsn.Client;

/// <summary>
/// An open read connection from <see cref="ReadYourWritesSession.OpenReadAsync"/> and where it went and why, for the
/// caller's logs. Disposing it disposes the connection.
/// </summary>
public sealed class ReadYourWritesRead : IAsyncDisposable, IDisposable
{
    internal ReadYourWritesRead(NpgsqlConnection connection, string requestedRegion, string? region, ReadRoute route, ReadReason reason, Lsn? lastWrite, Lsn? replay, TimeSpan waited)
    {
        Connection = connection;
        RequestedRegion = requestedRegion;
        Region = region;
        Route = route;
        Reason = reason;
        LastWrite = lastWrite;
        Replay = replay;
        Waited = waited;
    }

    /// <summary>The open connection; the caller owns it (or disposes this).</summary>
    public NpgsqlConnection Connection { get; }

    /// <summary>The region the read was asked for.</summary>
    public string RequestedRegion { get; }

    /// <summary>The region whose replica serves the read; <see langword="null"/> for the primary.</summary>
    public string? Region { get; }

    /// <summary>Where the read went.</summary>
    public ReadRoute Route { get; }

    /// <summary>Why it went there.</summary>
    public ReadReason Reason { get; }

    /// <summary>The session's last write when the read was decided (what the replica had to have); <see langword="null"/> if none.</summary>
    public Lsn? LastWrite { get; }

    /// <summary>The replay position of the region read from (or of the preferred region, for the primary) when decided, if known.</summary>
    public Lsn? Replay { get; }

    /// <summary>How long the read waited for a replica.</summary>
    public TimeSpan Waited { get; }

    /// <inheritdoc />
    public override string ToString() =>
        $"read for region '{RequestedRegion}' went to {(Region is null ? "the primary" : $"the replica of '{Region}'")} ({Route}, {Reason}; last write {LastWrite?.ToString() ?? "none"}, replay {Replay?.ToString() ?? "unknown"}, waited {Waited.TotalMilliseconds:0.#} ms)";

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Connection.DisposeAsync();

    /// <inheritdoc />
    public void Dispose() => Connection.Dispose();
}
