namespace OrleansLsn;

/// <summary>What a <see cref="RowChange"/> did to its relation.</summary>
[GenerateSerializer]
[Alias("OrleansLsn.ChangeKind")]
public enum ChangeKind
{
    /// <summary>A row was inserted; <see cref="RowChange.NewValues"/> holds it.</summary>
    Insert,

    /// <summary>A row was updated; <see cref="RowChange.NewValues"/> holds the new row and, depending on the replica identity, <see cref="RowChange.OldValues"/> the old key or row.</summary>
    Update,

    /// <summary>A row was deleted; <see cref="RowChange.OldValues"/> holds its key (or the whole row with <c>REPLICA IDENTITY FULL</c>).</summary>
    Delete,

    /// <summary>The relation was truncated; no values.</summary>
    Truncate,
}
