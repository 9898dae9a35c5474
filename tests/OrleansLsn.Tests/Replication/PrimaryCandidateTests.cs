using Npgsql;
using OrleansLsn.Replication;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>The pump's candidate primaries: host entries, multi-host connection strings, and the connection strings pinned to each host.</summary>
public sealed class PrimaryCandidateTests
{
    [Theory]
    [InlineData("db1", "db1", null)]
    [InlineData(" db1:6432 ", "db1", 6432)]
    [InlineData("10.0.0.5:5432", "10.0.0.5", 5432)]
    [InlineData("[::1]:5433", "::1", 5433)]
    [InlineData("[fe80::1]", "fe80::1", null)]
    [InlineData("fe80::1", "fe80::1", null)]
    public void TryParse_ReadsHostAndPort(string entry, string host, int? port)
    {
        Assert.Null(PrimaryCandidate.TryParse(entry, out string parsedHost, out int? parsedPort));
        Assert.Equal(host, parsedHost);
        Assert.Equal(port, parsedPort);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("db1:", "port")]
    [InlineData("db1:0", "port")]
    [InlineData("db1:70000", "port")]
    [InlineData("db1:abc", "port")]
    [InlineData(":5432", "host is empty")]
    [InlineData("[::1", "closing")]
    [InlineData("[::1]5432", "':port'")]
    public void TryParse_NamesTheProblem(string entry, string problem)
    {
        string? message = PrimaryCandidate.TryParse(entry, out _, out _);
        Assert.NotNull(message);
        Assert.Contains(problem, message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hosts_PinEachCandidate_KeepTheOtherSettings_AndDropTargetSessionAttributes()
    {
        var options = new ReplicationPumpOptions
        {
            ConnectionString = "Host=ignored;Port=5432;Username=app;Password=pw;Database=shop;Target Session Attributes=primary",
            SlotName = "s",
            PublicationName = "p",
        };
        options.Hosts.Add("db1");
        options.Hosts.Add("db2:6432");

        IReadOnlyList<PrimaryCandidate> candidates = PrimaryCandidate.From(options, options.ConnectionString, options.ConnectionString);

        Assert.Equal(["db1:5432", "db2:6432"], candidates.Select(c => c.Name));
        var second = new NpgsqlConnectionStringBuilder(candidates[1].ReplicationConnectionString);
        Assert.Equal(("db2", 6432, "shop", "app"), (second.Host, second.Port, second.Database, second.Username));
        Assert.Null(second.TargetSessionAttributes);
        Assert.DoesNotContain("pw", string.Join(" ", candidates.Select(c => c.Name)), StringComparison.Ordinal);
    }

    [Fact]
    public void MultiHostConnectionString_BecomesTheCandidates_SingleHostHasNone()
    {
        var multi = new ReplicationPumpOptions { ConnectionString = "Host=a:5433,b;Port=5440;Username=app", SlotName = "s", PublicationName = "p" };
        Assert.Equal(["a:5433", "b:5440"], PrimaryCandidate.From(multi, multi.ConnectionString, multi.ConnectionString).Select(c => c.Name));

        var single = new ReplicationPumpOptions { ConnectionString = "Host=a;Username=app", SlotName = "s", PublicationName = "p" };
        Assert.Empty(PrimaryCandidate.From(single, single.ConnectionString, single.ConnectionString));
    }

    [Fact]
    public void Validator_RejectsABadHostEntry()
    {
        var options = new ReplicationPumpOptions { ConnectionString = "Host=a", SlotName = "s", PublicationName = "p" };
        options.Hosts.Add("db1:99999");
        string failure = Assert.Single(new ReplicationPumpOptionsValidator().Validate(null, options).Failures!);
        Assert.StartsWith("Hosts: entry 'db1:99999'", failure, StringComparison.Ordinal);
    }
}
