namespace OrleansLsn;

/// <summary>
/// A table as pgoutput describes it. One instance is shared by every change to the relation in a session, so a batch
/// does not repeat the column names per row.
/// </summary>
/// <param name="RelationId">The table's OID on the primary.</param>
/// <param name="Schema">The schema (namespace) name.</param>
/// <param name="Name">The table name.</param>
/// <param name="Columns">The published columns, in the order of every value list of a change to this relation.</param>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.ChangeRelation")]
public sealed record ChangeRelation(
    [property: Id(0)] uint RelationId,
    [property: Id(1)] string Schema,
    [property: Id(2)] string Name,
    [property: Id(3)] IReadOnlyList<ChangeColumn> Columns)
{
    /// <summary>The schema-qualified name, e.g. <c>public.orders</c> (not quoted).</summary>
    public string QualifiedName => Schema + "." + Name;

    /// <summary>The index of the column named <paramref name="columnName"/>, or -1.</summary>
    public int IndexOf(string columnName)
    {
        for (int i = 0; i < Columns.Count; i++)
        {
            if (string.Equals(Columns[i].Name, columnName, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>One published column of a <see cref="ChangeRelation"/>.</summary>
/// <param name="Name">The column name.</param>
/// <param name="TypeId">The OID of the column's data type.</param>
/// <param name="IsKey">Whether the column is part of the replica identity (usually the primary key).</param>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.ChangeColumn")]
public sealed record ChangeColumn([property: Id(0)] string Name, [property: Id(1)] uint TypeId, [property: Id(2)] bool IsKey);
