namespace OrleansLsn.Database;

/// <summary>
/// What <see cref="DatabaseRoles"/> sets up: the three roles' names, optionally their passwords (as SCRAM-SHA-256
/// verifiers, never the plaintext), the membership database and schema, and the publications of the configured slots.
/// </summary>
public sealed class DatabaseRolesOptions
{
    /// <summary>Default name of the silo role.</summary>
    public const string DefaultSiloRole = "orleanslsn_silo";

    /// <summary>Default name of the client role.</summary>
    public const string DefaultClientRole = "orleanslsn_client";

    /// <summary>Default name of the tracker role.</summary>
    public const string DefaultTrackerRole = "orleanslsn_tracker";

    /// <summary>
    /// The silo role: <c>LOGIN REPLICATION</c>; membership rows read and written, the query rows and the gateway
    /// function; creates and streams the configured slots. Default <c>orleanslsn_silo</c>.
    /// </summary>
    public string SiloRole { get; set; } = DefaultSiloRole;

    /// <summary>The client role: <c>LOGIN</c>; the query rows and the gateway function only. Default <c>orleanslsn_client</c>.</summary>
    public string ClientRole { get; set; } = DefaultClientRole;

    /// <summary>The tracker role: <c>LOGIN</c> and <c>CONNECT</c> on the replica's database, no table right. Default <c>orleanslsn_tracker</c>.</summary>
    public string TrackerRole { get; set; } = DefaultTrackerRole;

    /// <summary>
    /// The silo role's password as a SCRAM-SHA-256 verifier (<see cref="ScramVerifier.Compute(string, int)"/>); null
    /// leaves an existing password alone (a new role then has none).
    /// </summary>
    public string? SiloPasswordVerifier { get; set; }

    /// <summary>The client role's password verifier; see <see cref="SiloPasswordVerifier"/>.</summary>
    public string? ClientPasswordVerifier { get; set; }

    /// <summary>The tracker role's password verifier; see <see cref="SiloPasswordVerifier"/>.</summary>
    public string? TrackerPasswordVerifier { get; set; }

    /// <summary>The membership database (where the silo and client roles connect). Required for <see cref="DatabaseRoles.GenerateSql"/>; <see cref="DatabaseRoles.ApplyAsync"/> takes the connection's.</summary>
    public string? Database { get; set; }

    /// <summary>The database the trackers connect to on the replicas (physical standbys share the primary's databases and roles). Default: <see cref="Database"/>.</summary>
    public string? ReplicaDatabase { get; set; }

    /// <summary>The schema holding the membership tables. Default: <c>public</c> for <see cref="DatabaseRoles.GenerateSql"/>; the connection's <c>current_schema()</c> for <see cref="DatabaseRoles.ApplyAsync"/>.</summary>
    public string? Schema { get; set; }

    /// <summary>
    /// The publications of the configured slots, created if missing by whoever applies the SQL (the tables' owner), so
    /// the silo role needs neither <c>CREATE</c> on the database nor ownership of the tables. The tables must exist.
    /// </summary>
    public IList<DatabasePublication> Publications { get; } = new List<DatabasePublication>();
}

/// <summary>A publication a configured slot streams: its name and tables (<c>table</c> or <c>schema.table</c>; none: <c>FOR ALL TABLES</c>).</summary>
public sealed record DatabasePublication(string Name, IReadOnlyList<string> Tables);
