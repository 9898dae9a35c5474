using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Membership;

/// <summary>Gives each test a fresh database named after it (class and method), dropped before and after.</summary>
public abstract class MembershipTestBase(PostgresFixture fixture) : IAsyncLifetime
{
    private MembershipDatabase? _database;

    protected PostgresFixture Fixture { get; } = fixture;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The connection string of this test's own database.</summary>
    protected string Db => (_database ?? throw new InvalidOperationException("the test database is not created yet")).ConnectionString;

    public virtual async ValueTask InitializeAsync()
    {
        string test = GetType().Name + "_" + (TestContext.Current.TestMethod?.MethodName ?? "unknown");
        _database = await MembershipDatabase.CreateAsync(Fixture, test, Ct);
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    protected static SiloRow Silo(int port, int status = StoredMembershipQueries.Active, int generation = 1, int proxyPort = 0, string address = "127.0.0.1", DateTime? at = null)
    {
        DateTime time = TruncateToMicroseconds(at ?? DateTime.UtcNow);
        return new SiloRow(address, port, generation, $"silo-{port}", "host-" + port, status, proxyPort, null, time, time);
    }

    /// <summary>Awaits <paramref name="task"/>, failing with <paramref name="phase"/> if it takes longer than <paramref name="timeout"/>.</summary>
    protected static async Task WithinAsync(Task task, TimeSpan timeout, string phase)
    {
        try
        {
            await task.WaitAsync(timeout, Ct);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s in phase: {phase}");
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds, failing with <paramref name="describe"/> after <paramref name="timeout"/>.</summary>
    protected static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<Task<string>> describe)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s: {await describe()}");
            }

            await Task.Delay(20, Ct);
        }
    }

    /// <summary>PostgreSQL keeps microseconds; .NET ticks are 100 ns.</summary>
    protected static DateTime TruncateToMicroseconds(DateTime value) =>
        new(value.Ticks - (value.Ticks % 10), DateTimeKind.Utc);
}
