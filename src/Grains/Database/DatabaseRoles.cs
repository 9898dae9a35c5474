using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrleansLsn.Membership;
using OrleansLsn.Replication;

namespace OrleansLsn.Database;

/// <summary>
/// Least-privilege roles for a deployment, as idempotent SQL: a silo role (<c>LOGIN REPLICATION</c>; reads and writes
/// membership rows, reads the query rows, creates and streams the configured slots from publications made for it), a
/// client role (<c>LOGIN</c>; the query rows and the gateway function <c>orleanslsn_membership_gateways</c> only, no
/// right on the membership tables) and a tracker role (<c>LOGIN</c>, <c>CONNECT</c>; no table right: the tracker only
/// calls <c>pg_is_in_recovery()</c> and <c>pg_last_wal_replay_lsn()</c>, which every role may).
/// </summary>
/// <remarks>
/// The SQL creates a role only if missing, then sets its attributes (and its password, when a verifier is given) with
/// <c>ALTER ROLE</c>, grants, and creates each publication only if missing: running it twice changes nothing the first
/// run did not. Run it as a superuser (granting <c>REPLICATION</c> needs one) after the membership schema, in one
/// transaction. Names are validated (<see cref="PostgresIdentifiers.CheckRoleName"/>) and quoted; passwords are
/// SCRAM-SHA-256 verifiers computed by the caller, so the plaintext reaches neither the server nor its logs.
/// </remarks>
public static partial class DatabaseRoles
{
    /// <summary>The key of the transaction-scoped advisory lock held while applying: <c>'OLSN'</c> <c>'ROLE'</c> in ASCII.</summary>
    public const long AdvisoryLockKey = 0x4F4C534E_524F4C45;

    /// <summary>The gateway function's signature, as <c>GRANT EXECUTE</c> names it.</summary>
    internal const string GatewayFunction = "orleanslsn_membership_gateways(text, integer)";

    /// <summary>
    /// Checks <paramref name="options"/>: every problem, or none. Role names must be valid and distinct, verifiers
    /// SCRAM-SHA-256 ones, publication and table names valid identifiers.
    /// </summary>
    public static IReadOnlyList<string> Validate(DatabaseRolesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>();
        foreach ((string what, string name) in new[] { ("silo role", options.SiloRole), ("client role", options.ClientRole), ("tracker role", options.TrackerRole) })
        {
            if (PostgresIdentifiers.CheckRoleName(name) is { } problem)
            {
                problems.Add($"{what}: {problem}");
            }
        }

        if (problems.Count == 0 && new[] { options.SiloRole, options.ClientRole, options.TrackerRole }.Distinct(StringComparer.Ordinal).Count() != 3)
        {
            problems.Add($"the silo, client and tracker roles must be three different roles (given {options.SiloRole}, {options.ClientRole}, {options.TrackerRole}): each gets different rights");
        }

        foreach ((string what, string? verifier) in new[] { ("silo", options.SiloPasswordVerifier), ("client", options.ClientPasswordVerifier), ("tracker", options.TrackerPasswordVerifier) })
        {
            if (verifier is not null && !IsVerifier(verifier))
            {
                problems.Add($"the {what} role's password must be a SCRAM-SHA-256 verifier (ScramVerifier.Compute), never the password itself");
            }
        }

        foreach ((string what, string? name) in new[] { ("database", options.Database), ("replica database", options.ReplicaDatabase), ("schema", options.Schema) })
        {
            if (name is not null && (name.Length == 0 || Encoding.UTF8.GetByteCount(name) > PostgresIdentifiers.MaxLength || name.Any(char.IsControl)))
            {
                problems.Add($"the {what} name must be 1 to {PostgresIdentifiers.MaxLength} bytes without control characters");
            }
        }

        foreach (DatabasePublication publication in options.Publications)
        {
            if (PostgresIdentifiers.CheckPublicationName(publication.Name) is { } problem)
            {
                problems.Add(problem);
            }

            foreach (string table in publication.Tables)
            {
                if (PostgresIdentifiers.CheckTableName(table) is { } tableProblem)
                {
                    problems.Add($"publication {publication.Name}: {tableProblem}");
                }
            }
        }

        return problems;
    }

    /// <summary>
    /// The SQL that creates (if missing) and grants the three roles and the slots' publications. It holds no
    /// transaction control; run it in one transaction as a superuser, after the membership schema.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="options"/> has problems (all listed) or no <see cref="DatabaseRolesOptions.Database"/>.</exception>
    public static string GenerateSql(DatabaseRolesOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        IReadOnlyList<string> problems = Validate(options);
        if (problems.Count > 0)
        {
            throw new ArgumentException("Database roles: " + string.Join("; ", problems) + ".", nameof(options));
        }

        if (string.IsNullOrEmpty(options.Database))
        {
            throw new ArgumentException("Database roles: the membership database is required.", nameof(options));
        }

        string silo = PostgresIdentifiers.Quote(options.SiloRole);
        string client = PostgresIdentifiers.Quote(options.ClientRole);
        string tracker = PostgresIdentifiers.Quote(options.TrackerRole);
        string database = PostgresIdentifiers.Quote(options.Database);
        string replicaDatabase = PostgresIdentifiers.Quote(options.ReplicaDatabase ?? options.Database);
        string schema = PostgresIdentifiers.Quote(options.Schema ?? "public");

        var sql = new StringBuilder();
        sql.AppendLine("-- OrleansLsn least-privilege roles (DatabaseRoles). Idempotent: roles and publications are created only if missing.");
        sql.AppendLine("-- Run as a superuser, in one transaction, after the membership schema (PostgresMembershipSchema.SetupSql).");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"SELECT pg_advisory_xact_lock({AdvisoryLockKey});");
        sql.AppendLine("DO $orleanslsn_roles$");
        sql.AppendLine("BEGIN");
        foreach (string role in new[] { options.SiloRole, options.ClientRole, options.TrackerRole })
        {
            sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {PostgresIdentifiers.QuoteLiteral(role)}) THEN");
            sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"        CREATE ROLE {PostgresIdentifiers.Quote(role)};");
            sql.AppendLine("    END IF;");
        }

        sql.AppendLine("END");
        sql.AppendLine("$orleanslsn_roles$;");
        sql.AppendLine();
        sql.AppendLine("-- Attributes: LOGIN, and REPLICATION for the silo role only (slots and the replication connection); nothing else.");
        AppendAlter(sql, silo, "REPLICATION", options.SiloPasswordVerifier);
        AppendAlter(sql, client, "NOREPLICATION", options.ClientPasswordVerifier);
        AppendAlter(sql, tracker, "NOREPLICATION", options.TrackerPasswordVerifier);
        sql.AppendLine();
        sql.AppendLine("-- Silo: membership rows read and written, the query rows read, the gateway function.");
        sql.AppendLine("-- Client: the query rows read (Orleans loads them at start) and the gateway function (SECURITY DEFINER), no table right.");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"GRANT CONNECT ON DATABASE {database} TO {silo}, {client};");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"GRANT USAGE ON SCHEMA {schema} TO {silo}, {client};");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"GRANT SELECT ON TABLE {schema}.orleansquery TO {silo}, {client};");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {schema}.orleanslsn_membership_deployment, {schema}.orleanslsn_membership_silo TO {silo};");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"GRANT EXECUTE ON FUNCTION {schema}.{GatewayFunction} TO {silo}, {client};");
        sql.AppendLine();
        sql.AppendLine("-- Silo: the replication grains' subscribers, remembered so that a new activation holds each slot for them.");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"{SubscriberRegistry.CreateTableSqlFor(schema + "." + SubscriberRegistry.TableName)};");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"GRANT SELECT, INSERT, DELETE ON TABLE {schema}.{SubscriberRegistry.TableName} TO {silo};");
        sql.AppendLine();
        sql.AppendLine("-- Tracker: connects to the replica's database; pg_is_in_recovery() and pg_last_wal_replay_lsn() need no grant.");
        sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"GRANT CONNECT ON DATABASE {replicaDatabase} TO {tracker};");

        if (options.Publications.Count > 0)
        {
            sql.AppendLine();
            sql.AppendLine("-- The slots' publications, made by the tables' owner: the silo role streams them (REPLICATION) without owning the tables.");
            sql.AppendLine("DO $orleanslsn_publications$");
            sql.AppendLine("BEGIN");
            foreach (DatabasePublication publication in options.Publications)
            {
                string scope = publication.Tables.Count == 0
                    ? "FOR ALL TABLES"
                    : "FOR TABLE " + string.Join(", ", publication.Tables.Select(PostgresIdentifiers.QuoteTable));
                sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"    IF NOT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = {PostgresIdentifiers.QuoteLiteral(publication.Name)}) THEN");
                sql.AppendLine(System.Globalization.CultureInfo.InvariantCulture, $"        CREATE PUBLICATION {PostgresIdentifiers.Quote(publication.Name)} {scope};");
                sql.AppendLine("    END IF;");
            }

            sql.AppendLine("END");
            sql.AppendLine("$orleanslsn_publications$;");
        }

        return sql.ToString();
    }

    /// <summary>
    /// Applies the membership schema (<see cref="PostgresMembershipSchema.ApplyAsync"/>) and then
    /// <see cref="GenerateSql"/>'s SQL, in one transaction under <see cref="AdvisoryLockKey"/>, over
    /// <paramref name="ownerConnectionString"/>: a superuser's (or the database owner's, when the roles exist and need
    /// no <c>REPLICATION</c> change). Database and schema default to the connection's.
    /// </summary>
    /// <param name="ownerConnectionString">Never logged.</param>
    /// <param name="options">The roles; not changed.</param>
    /// <param name="logger">One line on success; may be null.</param>
    /// <param name="cancellationToken">Cancels; nothing is then changed.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> has problems.</exception>
    /// <exception cref="NpgsqlException">The server refused (e.g. <c>42501</c>: not a superuser; <c>42P01</c>: a publication's table is missing); nothing was changed.</exception>
    public static async Task ApplyAsync(string ownerConnectionString, DatabaseRolesOptions options, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(ownerConnectionString);
        ArgumentNullException.ThrowIfNull(options);
        logger ??= NullLogger.Instance;
        IReadOnlyList<string> problems = Validate(options);
        if (problems.Count > 0)
        {
            throw new ArgumentException("Database roles: " + string.Join("; ", problems) + ".", nameof(options));
        }

        await PostgresMembershipSchema.ApplyAsync(ownerConnectionString, logger, cancellationToken).ConfigureAwait(false);

        await using var connection = new NpgsqlConnection(ownerConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        var resolved = new DatabaseRolesOptions
        {
            SiloRole = options.SiloRole,
            ClientRole = options.ClientRole,
            TrackerRole = options.TrackerRole,
            SiloPasswordVerifier = options.SiloPasswordVerifier,
            ClientPasswordVerifier = options.ClientPasswordVerifier,
            TrackerPasswordVerifier = options.TrackerPasswordVerifier,
            Database = options.Database ?? connection.Database,
            ReplicaDatabase = options.ReplicaDatabase,
            Schema = options.Schema,
        };
        if (resolved.Schema is null)
        {
            await using var schema = new NpgsqlCommand("SELECT current_schema()", connection);
            resolved.Schema = await schema.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string ?? "public";
        }

        foreach (DatabasePublication publication in options.Publications)
        {
            resolved.Publications.Add(publication);
        }

        string sql = GenerateSql(resolved);
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = new NpgsqlCommand(sql, connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        Log.Applied(logger, resolved.Database!, resolved.SiloRole, resolved.ClientRole, resolved.TrackerRole, resolved.Publications.Count);
    }

    private static void AppendAlter(StringBuilder sql, string role, string replication, string? verifier)
    {
        sql.Append(System.Globalization.CultureInfo.InvariantCulture, $"ALTER ROLE {role} WITH LOGIN {replication} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS");
        if (verifier is not null)
        {
            sql.Append(" PASSWORD ").Append(PostgresIdentifiers.QuoteLiteral(verifier));
        }

        sql.AppendLine(";");
    }

    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, base64 parts: nothing else may be sent as a password.
    private static bool IsVerifier(string verifier) =>
        System.Text.RegularExpressions.Regex.IsMatch(verifier, @"^SCRAM-SHA-256\$[0-9]{1,9}:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$");

    private static partial class Log
    {
        [LoggerMessage(4150, LogLevel.Information, "OrleansLsn database roles applied in database {Database}: silo role {Silo}, client role {Client}, tracker role {Tracker}; {Publications} publication(s) ensured")]
        internal static partial void Applied(ILogger logger, string database, string silo, string client, string tracker, int publications);
    }
}
