namespace OrleansLsn.Tests.Infrastructure;

/// <summary>What a test cluster is made of, whatever the backend.</summary>
public sealed class TestPostgresClusterOptions
{
    /// <summary>Short name, part of the folder or container names (letters, digits, '-').</summary>
    public string Name { get; set; } = "pg";

    /// <summary>One hot standby per name (<c>[a-z0-9_-]</c>, at most 32 characters, not <c>primary</c>); empty for none.</summary>
    public IList<string> StandbyNames { get; set; } = [];

    /// <summary>
    /// Server settings on top of the local cluster's defaults (<see cref="OrleansLsn.PostgresLocal.LocalPostgresCluster.DefaultSettings"/>),
    /// in postgresql.conf syntax (<c>'2s'</c>, <c>logical</c>); the standbys get them too.
    /// </summary>
    public IDictionary<string, string> Settings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
}
