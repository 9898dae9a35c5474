namespace OrleansLsn;

/// <summary>
/// One row change inside a committed transaction. Values are PostgreSQL's text representation of each column, in the
/// order of <see cref="ChangeRelation.Columns"/>; SQL NULL is <see langword="null"/>.
/// </summary>
/// <param name="Kind">Insert, update, delete or truncate.</param>
/// <param name="Relation">The table.</param>
/// <param name="NewValues">The new row (insert and update); otherwise <see langword="null"/>.</param>
/// <param name="OldValues">
/// The old row for updates and deletes, when PostgreSQL sends it: with <c>REPLICA IDENTITY FULL</c> the whole row, else
/// only the key columns (the other positions are <see langword="null"/>, see <paramref name="OldValuesAreKeyOnly"/>). For
/// an update that did not change the key under the default replica identity PostgreSQL sends no old row.
/// </param>
/// <param name="OldValuesAreKeyOnly">Whether <paramref name="OldValues"/> holds only the replica identity columns.</param>
/// <param name="UnchangedToastColumns">
/// Column indexes of <paramref name="NewValues"/> whose large (TOASTed) value did not change and was therefore not sent;
/// their entries are <see langword="null"/>. <see langword="null"/> when there are none.
/// </param>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.RowChange")]
public sealed record RowChange(
    [property: Id(0)] ChangeKind Kind,
    [property: Id(1)] ChangeRelation Relation,
    [property: Id(2)] IReadOnlyList<string?>? NewValues,
    [property: Id(3)] IReadOnlyList<string?>? OldValues = null,
    [property: Id(4)] bool OldValuesAreKeyOnly = false,
    [property: Id(5)] IReadOnlyList<int>? UnchangedToastColumns = null)
{
    /// <summary>The new (or, for a delete, the old) value of the column named <paramref name="columnName"/>.</summary>
    /// <exception cref="ArgumentException">The relation has no such column.</exception>
    public string? this[string columnName]
    {
        get
        {
            int index = Relation.IndexOf(columnName);
            if (index < 0)
            {
                throw new ArgumentException($"Relation {Relation.QualifiedName} has no column '{columnName}'.", nameof(columnName));
            }

            IReadOnlyList<string?>? values = NewValues ?? OldValues;
            return values is null ? null : values[index];
        }
    }
}
