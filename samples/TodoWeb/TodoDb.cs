using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace OrleansLsn.Samples.TodoWeb;

/// <summary>An item of a to-do list.</summary>
public sealed class TodoItem
{
    public long Id { get; set; }

    public string List { get; set; } = "";

    public string Text { get; set; } = "";

    public DateTimeOffset Created { get; set; }
}

/// <summary>The application's one context: the primary's (writes) and, keyed, the read context over what was decided.</summary>
public sealed class TodoDb(DbContextOptions<TodoDb> options) : DbContext(options)
{
    /// <summary>The table, created by <see cref="EnsureSchemaAsync"/> (a real application would use migrations).</summary>
    public const string Table = "todo_items";

    public DbSet<TodoItem> Items => Set<TodoItem>();

    /// <summary>Creates the table on the primary if it is missing.</summary>
    public static async Task EnsureSchemaAsync(NpgsqlDataSource primary, CancellationToken cancellationToken)
    {
        await using NpgsqlCommand command = primary.CreateCommand(
            $"create table if not exists {Table} (id bigserial primary key, list text not null, text text not null, created timestamptz not null default now()); " +
            $"create index if not exists {Table}_list on {Table} (list, id)");
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<TodoItem>(e =>
        {
            e.ToTable(Table);
            e.Property(i => i.Id).HasColumnName("id");
            e.Property(i => i.List).HasColumnName("list");
            e.Property(i => i.Text).HasColumnName("text");
            e.Property(i => i.Created).HasColumnName("created").HasDefaultValueSql("now()");
        });
}
