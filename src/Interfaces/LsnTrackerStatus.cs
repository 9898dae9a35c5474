namespace OrleansLsn;

/// <summary>A snapshot of one region's tracker.</summary>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.LsnTrackerStatus")]
public sealed record LsnTrackerStatus
{
    /// <summary>The region (the grain key).</summary>
    [Id(0)]
    public required string Region { get; init; }

    /// <summary>The silo hosting the tracker: its address, <c>host:port@generation</c>.</summary>
    [Id(1)]
    public required string Silo { get; init; }

    /// <summary>The latest replay LSN seen; <see langword="null"/> before the first successful poll.</summary>
    [Id(2)]
    public required Lsn? LastReplay { get; init; }

    /// <summary>Whether the watched server is a primary, so that every LSN counts as replicated.</summary>
    [Id(3)]
    public required bool IsPrimary { get; init; }

    /// <summary>Whether the tracker can see its replica.</summary>
    [Id(4)]
    public required TrackerHealthStatus Health { get; init; }

    /// <summary>When the tracker entered <see cref="Health"/>.</summary>
    [Id(5)]
    public required DateTimeOffset HealthSince { get; init; }

    /// <summary>The last error while degraded (type and message; never a connection string or password), else <see langword="null"/>.</summary>
    [Id(6)]
    public required string? LastError { get; init; }

    /// <summary>Waits and notification requests not yet released.</summary>
    [Id(7)]
    public required int PendingWaiters { get; init; }

    /// <summary>Observers subscribed to every advance.</summary>
    [Id(8)]
    public required int Subscribers { get; init; }

    /// <summary>Client replay views registered (<see cref="ILsnTrackerGrain.WatchReplay"/>).</summary>
    [Id(9)]
    public int Views { get; init; }

    /// <summary>Replay views with demand now: pushed every advance, and the replica polled at the active rate.</summary>
    [Id(10)]
    public int ViewsWithDemand { get; init; }
}
