namespace OrleansLsn;

/// <summary>
/// What a new subscriber of a slot wants copied before its change stream starts
/// (<see cref="IReplicationGrain.SubscribeFromSnapshot"/>): the tables as they are in one consistent snapshot, joined
/// exactly to the stream that follows (every committed transaction is in the copy or in the stream, never both, never
/// neither).
/// </summary>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.SnapshotRequest")]
public sealed record SnapshotRequest
{
    /// <summary>The most rows a snapshot batch may carry.</summary>
    public const int MaxChunkRows = 100_000;

    /// <summary>
    /// The tables to copy, each <c>schema.table</c> (case-sensitive, as PostgreSQL stores the names); every one must be
    /// in the slot's publication. Empty (the default): every table of the publication.
    /// </summary>
    [Id(0)]
    public IReadOnlyList<string> Tables { get; init; } = [];

    /// <summary>Rows per snapshot batch, 1 to <see cref="MaxChunkRows"/> (default 1 000).</summary>
    [Id(1)]
    public int ChunkRows { get; init; } = 1_000;

    /// <summary>Every table of the slot's publication.</summary>
    public static SnapshotRequest WholePublication { get; } = new();

    /// <summary>Only <paramref name="tables"/> (each <c>schema.table</c>, in the slot's publication).</summary>
    public static SnapshotRequest ForTables(params string[] tables) => new() { Tables = [.. tables] };
}
