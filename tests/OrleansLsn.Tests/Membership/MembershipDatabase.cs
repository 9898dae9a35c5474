using System.Security.Cryptography;
using System.Text;
using Npgsql;
using OrleansLsn.Tests.Infrastructure;

namespace OrleansLsn.Tests.Membership;

/// <summary>
/// A database of its own for one test, on the fixture's primary, named after the test: dropped before it is created
/// and again when the test ends, so no two tests share membership tables.
/// </summary>
internal sealed class MembershipDatabase : IAsyncDisposable
{
    private readonly string _adminConnectionString;

    private MembershipDatabase(string adminConnectionString, string name, string connectionString)
    {
        _adminConnectionString = adminConnectionString;
        Name = name;
        ConnectionString = connectionString;
    }

    public string Name { get; }

    /// <summary>The connection string of the test's database.</summary>
    public string ConnectionString { get; }

    public static async Task<MembershipDatabase> CreateAsync(PostgresFixture fixture, string testName, CancellationToken cancellationToken)
    {
        string name = NameFor(testName);
        var builder = new NpgsqlConnectionStringBuilder(fixture.PrimaryConnectionString) { Database = name };
        await DropAsync(fixture.PrimaryConnectionString, name, builder.ConnectionString, cancellationToken);
        await using (var admin = new NpgsqlConnection(fixture.PrimaryConnectionString))
        {
            await admin.OpenAsync(cancellationToken);
            // WAL_LOG, the default since 15, writes the whole template (about 4 MB) to the WAL that the replication
            // tests running alongside decode; FILE_COPY writes a few hundred bytes (and a checkpoint) instead.
            string strategy = admin.PostgreSqlVersion.Major >= 15 ? " STRATEGY = FILE_COPY" : "";
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"{strategy}", admin);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        return new MembershipDatabase(fixture.PrimaryConnectionString, name, builder.ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        await DropAsync(_adminConnectionString, Name, ConnectionString, CancellationToken.None);
    }

    /// <summary>A legal database name (63 bytes at most) unique to <paramref name="testName"/>.</summary>
    internal static string NameFor(string testName)
    {
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(testName)))[..8];
        var stem = new StringBuilder();
        foreach (char c in testName.ToLowerInvariant())
        {
            stem.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        }

        string prefix = "m_" + (stem.Length > 50 ? stem.ToString(0, 50) : stem.ToString());
        return prefix + "_" + hash;
    }

    private static async Task DropAsync(string adminConnectionString, string name, string connectionString, CancellationToken cancellationToken)
    {
        // This process's idle pooled connections to the database go first; FORCE ends any others.
        using (var pooled = new NpgsqlConnection(connectionString))
        {
            NpgsqlConnection.ClearPool(pooled);
        }

        await using var admin = new NpgsqlConnection(adminConnectionString);
        await admin.OpenAsync(cancellationToken);
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync(cancellationToken);
    }
}
