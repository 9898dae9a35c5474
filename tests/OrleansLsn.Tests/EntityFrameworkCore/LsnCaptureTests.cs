using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OrleansLsn.Client;
using OrleansLsn.EntityFrameworkCore;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.EntityFrameworkCore;

/// <summary>
/// <see cref="UseLsnCaptureExtensions.UseLsnCapture(DbContextOptionsBuilder, LsnWriteRecorder)"/> with EF Core 10 and
/// Npgsql.EntityFrameworkCore.PostgreSQL against the real primary and standby, in a database of this class's own: every
/// write path records one write whose LSN the standby shows the write at; queries, rolled-back transactions and writes
/// still inside an open transaction record nothing.
/// </summary>
public sealed class LsnCaptureTests(LsnCaptureTests.Database database) : IClassFixture<LsnCaptureTests.Database>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SaveChanges_OfOneEntity_WithoutATransaction_IsRecorded_AndTheStandbyHasItAtThatLsn()
    {
        var recorder = new LsnWriteRecorder();
        string name = Name();
        await using (CaptureDb db = database.NewContext(recorder))
        {
            db.Items.Add(new Item { Name = name });
            Assert.Equal(1, await db.SaveChangesAsync(Ct));
        }

        Assert.Equal(1, recorder.Count);
        await AssertOnStandbyAsync(recorder, $"select count(*) from \"Items\" where \"Name\" = '{name}'", 1);
    }

    [Fact]
    public async Task SaveChanges_OfSeveralEntities_InItsOwnTransaction_IsRecordedOnce_AtTheCommit()
    {
        var recorder = new LsnWriteRecorder();
        var commits = new CommitCounter();
        string name = Name();
        await using (CaptureDb db = database.NewContext(recorder, commits))
        {
            db.Items.AddRange(Enumerable.Range(0, 5).Select(_ => new Item { Name = name }));
            db.Items.Add(new Item { Name = name });
            // An update in the same SaveChanges makes EF Core use a transaction for certain.
            Item first = await db.Items.OrderBy(i => i.Id).FirstAsync(Ct);
            first.Name = first.Name;
            Assert.Equal(6, await db.SaveChangesAsync(Ct));
        }

        // EF Core committed a transaction of its own, so the write was recorded by the commit path.
        Assert.Equal(1, commits.Committed);
        Assert.Equal(1, recorder.Count);
        await AssertOnStandbyAsync(recorder, $"select count(*) from \"Items\" where \"Name\" = '{name}'", 6);
    }

    [Fact]
    public async Task ExplicitTransaction_IsRecordedAtItsCommit_NotBefore()
    {
        var recorder = new LsnWriteRecorder();
        string name = Name();
        await using (CaptureDb db = database.NewContext(recorder))
        {
            await using var transaction = await db.Database.BeginTransactionAsync(Ct);
            db.Items.Add(new Item { Name = name });
            await db.SaveChangesAsync(Ct);
            db.Items.Add(new Item { Name = name });
            await db.SaveChangesAsync(Ct);
            await db.Items.Where(i => i.Name == name).ExecuteUpdateAsync(s => s.SetProperty(i => i.Name, name + "u"), Ct);
            Assert.Equal(0, recorder.Count);
            await transaction.CommitAsync(Ct);
        }

        Assert.Equal(1, recorder.Count);
        await AssertOnStandbyAsync(recorder, $"select count(*) from \"Items\" where \"Name\" = '{name}u'", 2);
    }

    [Fact]
    public async Task ExecuteUpdate_ExecuteDelete_AndRawSql_WithoutATransaction_AreEachRecorded()
    {
        var recorder = new LsnWriteRecorder();
        string name = Name();
        await using CaptureDb db = database.NewContext(recorder);
        Assert.Equal(1, await db.Database.ExecuteSqlAsync($"insert into \"Items\" (\"Name\") values ({name})", Ct));
        Assert.Equal(1, recorder.Count);
        await AssertOnStandbyAsync(recorder, $"select count(*) from \"Items\" where \"Name\" = '{name}'", 1);

        Assert.Equal(1, await db.Items.Where(i => i.Name == name).ExecuteUpdateAsync(s => s.SetProperty(i => i.Name, name + "u"), Ct));
        Assert.Equal(2, recorder.Count);
        await AssertOnStandbyAsync(recorder, $"select count(*) from \"Items\" where \"Name\" = '{name}u'", 1);

        Assert.Equal(1, await db.Items.Where(i => i.Name == name + "u").ExecuteDeleteAsync(Ct));
        Assert.Equal(3, recorder.Count);
        await AssertOnStandbyAsync(recorder, $"select count(*) from \"Items\" where \"Name\" = '{name}u'", 0);

        // A statement that changed nothing records nothing.
        Assert.Equal(0, await db.Items.Where(i => i.Name == name).ExecuteDeleteAsync(Ct));
        Assert.Equal(3, recorder.Count);
    }

    [Fact]
    public async Task Queries_AndARolledBackTransaction_RecordNothing()
    {
        var recorder = new LsnWriteRecorder();
        string name = Name();
        await using (CaptureDb db = database.NewContext(recorder))
        {
            await db.Items.Where(i => i.Name == name).ToListAsync(Ct);
            await db.Database.SqlQuery<int>($"select 1 as \"Value\"").ToListAsync(Ct);
            await using (var transaction = await db.Database.BeginTransactionAsync(Ct))
            {
                db.Items.Add(new Item { Name = name });
                await db.SaveChangesAsync(Ct);
                await transaction.RollbackAsync(Ct);
            }

            // A transaction that only read commits with nothing to record.
            await using (var readOnly = await db.Database.BeginTransactionAsync(Ct))
            {
                await db.Items.CountAsync(Ct);
                await readOnly.CommitAsync(Ct);
            }

            Assert.Equal(0, await db.Items.CountAsync(i => i.Name == name, Ct));
        }

        Assert.Equal(0, recorder.Count);
        Assert.Null(recorder.LastWrite);
    }

    [Fact]
    public async Task TheSynchronousPaths_AreRecordedToo()
    {
        var recorder = new LsnWriteRecorder();
        string name = Name();
        using (CaptureDb db = database.NewContext(recorder))
        {
            db.Items.Add(new Item { Name = name });
            db.SaveChanges();
            using (var transaction = db.Database.BeginTransaction())
            {
                db.Items.Add(new Item { Name = name });
                db.SaveChanges();
                transaction.Commit();
            }

            db.Items.Where(i => i.Name == name).ExecuteUpdate(s => s.SetProperty(i => i.Name, name + "s"));
        }

        Assert.Equal(3, recorder.Count);
        await AssertOnStandbyAsync(recorder, $"select count(*) from \"Items\" where \"Name\" = '{name}s'", 2);
    }

    [Fact]
    public async Task EachScope_HasItsOwnRecorder_ThroughDependencyInjection()
    {
        var services = new ServiceCollection();
        services.AddLsnWriteRecorder();
        services.AddDbContext<CaptureDb>((sp, o) => o.UseNpgsql(database.PrimaryConnectionString).UseLsnCapture(sp));
        await using ServiceProvider provider = services.BuildServiceProvider();
        string name = Name();
        await using (AsyncServiceScope writer = provider.CreateAsyncScope())
        {
            CaptureDb db = writer.ServiceProvider.GetRequiredService<CaptureDb>();
            db.Items.Add(new Item { Name = name });
            await db.SaveChangesAsync(Ct);
            Assert.Equal(1, writer.ServiceProvider.GetRequiredService<LsnWriteRecorder>().Count);
        }

        await using AsyncServiceScope reader = provider.CreateAsyncScope();
        Assert.Equal(1, await reader.ServiceProvider.GetRequiredService<CaptureDb>().Items.CountAsync(i => i.Name == name, Ct));
        Assert.Null(reader.ServiceProvider.GetRequiredService<LsnWriteRecorder>().LastWrite);

        var withoutRecorder = new ServiceCollection();
        withoutRecorder.AddDbContext<CaptureDb>((sp, o) => o.UseNpgsql(database.PrimaryConnectionString).UseLsnCapture(sp));
        await using ServiceProvider broken = withoutRecorder.BuildServiceProvider();
        var error = Assert.Throws<InvalidOperationException>(() => broken.CreateScope().ServiceProvider.GetRequiredService<CaptureDb>().Model);
        Assert.Contains("AddLsnWriteRecorder", error.Message, StringComparison.Ordinal);
    }

    private static string Name() => "n" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>The recorder's write is on this primary, and once the standby has replayed it the standby answers <paramref name="expected"/>.</summary>
    private async Task AssertOnStandbyAsync(LsnWriteRecorder recorder, string countSql, long expected)
    {
        CommittedWrite write = recorder.LastWrite ?? throw new Xunit.Sdk.XunitException("nothing was recorded");
        await using var standby = new NpgsqlConnection(database.StandbyConnectionString);
        await standby.OpenAsync(Ct);
        Assert.Equal(write.Primary.SystemIdentifier, unchecked((ulong)await ScalarAsync<long>(standby, "select system_identifier from pg_control_system()")));
        await Wait.UntilAsync(
            async () => new Lsn((ulong)await ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(standby, "select pg_last_wal_replay_lsn()")) >= write.Lsn,
            Deadline,
            () => $"the standby to replay {write.Lsn}",
            Ct);
        Assert.Equal(expected, await ScalarAsync<long>(standby, countSql));
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    /// <summary>Counts the transactions EF Core reports committed (after the capture's commit, which it still reports).</summary>
    private sealed class CommitCounter : DbTransactionInterceptor
    {
        public int Committed { get; private set; }

        public override Task TransactionCommittedAsync(System.Data.Common.DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Committed++;
            return Task.CompletedTask;
        }
    }

    public sealed class Item
    {
        public int Id { get; set; }

        public string Name { get; set; } = "";
    }

    public sealed class CaptureDb(DbContextOptions<CaptureDb> options) : DbContext(options)
    {
        public DbSet<Item> Items => Set<Item>();
    }

    /// <summary>A database of its own on the shared primary (the standby replicates it), created with the model's table.</summary>
    public sealed class Database(PostgresFixture postgres) : IAsyncLifetime
    {
        private readonly string _name = "efcap_" + Guid.NewGuid().ToString("N")[..12];

        public string PrimaryConnectionString => new NpgsqlConnectionStringBuilder(postgres.PrimaryConnectionString) { Database = _name }.ConnectionString;

        public string StandbyConnectionString => new NpgsqlConnectionStringBuilder(postgres.StandbyConnectionString) { Database = _name }.ConnectionString;

        public CaptureDb NewContext(LsnWriteRecorder recorder, params IInterceptor[] more) =>
            new(new DbContextOptionsBuilder<CaptureDb>().UseNpgsql(PrimaryConnectionString).UseLsnCapture(recorder).AddInterceptors(more).Options);

        public async ValueTask InitializeAsync()
        {
            await using (var primary = new NpgsqlConnection(postgres.PrimaryConnectionString))
            {
                await primary.OpenAsync();
                await using var create = new NpgsqlCommand($"create database {_name}", primary);
                await create.ExecuteNonQueryAsync();
            }

            await using CaptureDb db = new(new DbContextOptionsBuilder<CaptureDb>().UseNpgsql(PrimaryConnectionString).Options);
            await db.Database.EnsureCreatedAsync();
        }

        public async ValueTask DisposeAsync()
        {
            NpgsqlConnection.ClearPool(new NpgsqlConnection(PrimaryConnectionString));
            await using var primary = new NpgsqlConnection(postgres.PrimaryConnectionString);
            await primary.OpenAsync();
            await using var drop = new NpgsqlCommand($"drop database if exists {_name} with (force)", primary);
            await drop.ExecuteNonQueryAsync();
        }
    }
}
