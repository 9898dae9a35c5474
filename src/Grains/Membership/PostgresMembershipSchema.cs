using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace OrleansLsn.Membership;

/// <summary>
/// Sets up Orleans cluster membership (<c>Microsoft.Orleans.Clustering.AdoNet</c> with invariant <c>"Npgsql"</c>) in a
/// PostgreSQL database: the membership tables and the <c>OrleansQuery</c> rows the provider reads at start. The SQL is
/// this project's own (the embedded <c>orleans-membership.sql</c>).
/// </summary>
/// <remarks>
/// Silos call <see cref="ApplyAsync"/> before Orleans starts; clients, which only read, call
/// <see cref="IsAppliedAsync"/>. Applying is idempotent and safe to run from many silos at once: everything runs in one
/// transaction that first takes a transaction-scoped advisory lock (<see cref="AdvisoryLockKey"/>), tables are created
/// only if missing, and a query row is written only when it is missing or its text differs. A second run changes
/// nothing. Rows of other Orleans ADO.NET providers in <c>OrleansQuery</c> are left alone.
/// </remarks>
public static partial class PostgresMembershipSchema
{
    /// <summary>
    /// The key of the transaction-scoped advisory lock (<c>pg_advisory_xact_lock(bigint)</c>) held while applying:
    /// <c>'OLSN'</c> <c>'MEMB'</c> in ASCII. The single-bigint lock space is separate from the two-integer one the
    /// replication pump's per-slot locks use.
    /// </summary>
    public const long AdvisoryLockKey = 0x4F4C534E_4D454D42;

    /// <summary>The name of the embedded resource holding the setup SQL.</summary>
    internal const string ResourceName = "OrleansLsn.Membership.orleans-membership.sql";

    /// <summary>
    /// The <c>OrleansQuery</c> keys the ADO.NET clustering provider (10.4.2) requires; it refuses to start ("Not all
    /// required queries found") if any is missing.
    /// </summary>
    public static readonly ImmutableArray<string> RequiredQueryKeys =
    [
        "InsertMembershipVersionKey",
        "InsertMembershipKey",
        "UpdateMembershipKey",
        "UpdateIAmAlivetimeKey",
        "MembershipReadRowKey",
        "MembershipReadAllKey",
        "GatewaysQueryKey",
        "DeleteMembershipTableEntriesKey",
        "CleanupDefunctSiloEntriesKey",
    ];

    /// <summary>
    /// The keys the provider uses when present: <c>CleanupDefunctSiloEntryKey</c> (10.4.2) makes it delete defunct
    /// silos one by one, each only while the row still holds the values it read.
    /// </summary>
    public static readonly ImmutableArray<string> OptionalQueryKeys = ["CleanupDefunctSiloEntryKey"];

    /// <summary>Every key <see cref="ApplyAsync"/> writes: <see cref="RequiredQueryKeys"/> then <see cref="OptionalQueryKeys"/>.</summary>
    public static readonly ImmutableArray<string> InstalledQueryKeys = [.. RequiredQueryKeys, .. OptionalQueryKeys];

    private static readonly string[] TableNames = ["orleansquery", "orleanslsn_membership_deployment", "orleanslsn_membership_silo"];

    private static readonly Lazy<string> Script = new(LoadScript);

    private static readonly Lazy<ExpectedSchema> Expected = new(() => ExpectedSchema.Parse(SetupSql));

    /// <summary>The setup SQL applied by <see cref="ApplyAsync"/>.</summary>
    public static string SetupSql => Script.Value;

    /// <summary>
    /// Creates the membership tables if missing and installs or updates the provider's queries, in one transaction
    /// under the advisory lock <see cref="AdvisoryLockKey"/>. Waits for another silo applying at the same time.
    /// </summary>
    /// <param name="connectionString">The membership database (Npgsql connection string). Never logged.</param>
    /// <param name="logger">Receives one line saying what was created, updated or already present; may be null.</param>
    /// <param name="cancellationToken">Cancels the wait for the lock and the statements; nothing is then changed.</param>
    /// <exception cref="ArgumentException"><paramref name="connectionString"/> is empty.</exception>
    /// <exception cref="MembershipSchemaException">
    /// The schema is missing or out of date and the role may not create or change it; nothing was changed. When the schema
    /// is present and current, nothing is written at all, so a role without <c>CREATE</c> (the silo role of
    /// <c>DatabaseRoles</c>) passes.
    /// </exception>
    /// <exception cref="NpgsqlException">The database refused a statement or could not be reached; nothing was changed.</exception>
    public static async Task ApplyAsync(string connectionString, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        logger ??= NullLogger.Instance;

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        string database = connection.Database;
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);

        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction))
        {
            lockCommand.Parameters.Add(new NpgsqlParameter { Value = AdvisoryLockKey });
            await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // Read after the lock: whoever held it has committed, so this is the state the script starts from.
        IReadOnlyList<string> missingTables = await MissingTablesAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        IReadOnlySet<string> presentKeys = missingTables.Contains(TableNames[0], StringComparer.Ordinal)
            ? new HashSet<string>(StringComparer.Ordinal)
            : await PresentKeysAsync(connection, transaction, InstalledQueryKeys, cancellationToken).ConfigureAwait(false);

        // Current: nothing to write, so no DDL at all. A silo role with only its table rights (see DatabaseRoles) starts
        // against a schema its owner applied.
        if (missingTables.Count == 0 && await IsCurrentAsync(connection, transaction, cancellationToken).ConfigureAwait(false))
        {
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            Log.AlreadyPresent(logger, database, InstalledQueryKeys.Length);
            return;
        }

        var written = new List<string>();
        try
        {
            await using var scriptCommand = new NpgsqlCommand(SetupSql, connection, transaction);
            await using NpgsqlDataReader reader = await scriptCommand.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            // Only the final upsert returns QueryKey rows: the keys it inserted or rewrote.
            do
            {
                bool keys = reader.FieldCount == 1 && string.Equals(reader.GetName(0), "querykey", StringComparison.Ordinal);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (keys)
                    {
                        written.Add(reader.GetString(0));
                    }
                }
            }
            while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            string what = missingTables.Count == TableNames.Length ? "missing"
                : missingTables.Count > 0 ? $"incomplete (missing {string.Join(", ", missingTables)})"
                : "out of date (a query or the gateway function differs from this version's)";
            throw new MembershipSchemaException(
                $"The Orleans membership schema in database \"{database}\" is {what}, and role \"{connection.UserName}\" may not create or change it ({e.SqlState}: {e.MessageText}). "
                + "Apply it once as the database owner or a superuser: 'database-roles --apply' of the silo executable does it (and grants the silo, client and tracker roles their rights), "
                + "or run PostgresMembershipSchema.SetupSql in one transaction (psql -1). Then start the silo again.",
                e);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        string[] added = [.. written.Where(k => !presentKeys.Contains(k)).Order(StringComparer.Ordinal)];
        string[] replaced = [.. written.Where(presentKeys.Contains).Order(StringComparer.Ordinal)];
        if (missingTables.Count == 0 && written.Count == 0)
        {
            Log.AlreadyPresent(logger, database, InstalledQueryKeys.Length);
        }
        else if (missingTables.Count == TableNames.Length)
        {
            Log.Created(logger, database, string.Join(", ", TableNames), added.Length);
        }
        else
        {
            Log.Updated(logger, database, missingTables.Count == 0 ? "none" : string.Join(", ", missingTables),
                added.Length == 0 ? "none" : string.Join(", ", added),
                replaced.Length == 0 ? "none" : string.Join(", ", replaced));
        }
    }

    /// <summary>
    /// Tells whether the database holds every query in <see cref="RequiredQueryKeys"/>, so the provider can start.
    /// Only reads: meant for clients, which must not change the schema.
    /// </summary>
    /// <param name="connectionString">The membership database (Npgsql connection string). Never logged.</param>
    /// <param name="logger">Told which keys are missing when some are; may be null.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns><see langword="true"/> when <c>OrleansQuery</c> exists and holds every required key.</returns>
    /// <exception cref="NpgsqlException">The database could not be reached or refused the query.</exception>
    public static async Task<bool> IsAppliedAsync(string connectionString, ILogger? logger, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        logger ??= NullLogger.Instance;

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        IReadOnlyList<string> missingTables = await MissingTablesAsync(connection, null, cancellationToken).ConfigureAwait(false);
        IReadOnlySet<string> present = missingTables.Contains(TableNames[0], StringComparer.Ordinal)
            ? new HashSet<string>(StringComparer.Ordinal)
            : await PresentKeysAsync(connection, null, RequiredQueryKeys, cancellationToken).ConfigureAwait(false);
        string[] missing = [.. RequiredQueryKeys.Where(k => !present.Contains(k))];
        if (missing.Length > 0)
        {
            Log.NotApplied(logger, connection.Database, string.Join(", ", missing));
            return false;
        }

        return true;
    }

    /// <summary>
    /// Whether the gateway function and every installed query hold exactly this version's text (tables checked before).
    /// Only reads: needs no right beyond <c>SELECT</c> on <c>OrleansQuery</c>.
    /// </summary>
    private static async Task<bool> IsCurrentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using (var function = new NpgsqlCommand(
            "SELECT p.prosrc, p.prosecdef FROM pg_proc AS p WHERE p.oid = to_regprocedure('orleanslsn_membership_gateways(text,integer)')", connection, transaction))
        await using (NpgsqlDataReader reader = await function.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                || !string.Equals(reader.GetString(0), Expected.Value.GatewayFunctionBody, StringComparison.Ordinal)
                || !reader.GetBoolean(1))
            {
                return false;
            }
        }

        Dictionary<string, string> expected = Expected.Value.Queries;
        int same = 0;
        await using (var queries = new NpgsqlCommand("SELECT QueryKey, QueryText FROM OrleansQuery WHERE QueryKey = ANY($1)", connection, transaction))
        {
            queries.Parameters.Add(new NpgsqlParameter { Value = expected.Keys.ToArray() });
            await using NpgsqlDataReader reader = await queries.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (string.Equals(reader.GetString(1), expected[reader.GetString(0)], StringComparison.Ordinal))
                {
                    same++;
                }
            }
        }

        return same == expected.Count;
    }

    private static async Task<IReadOnlyList<string>> MissingTablesAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        var missing = new List<string>();
        await using var command = new NpgsqlCommand("SELECT name FROM unnest($1::text[]) AS t(name) WHERE to_regclass(name) IS NULL", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = TableNames });
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            missing.Add(reader.GetString(0));
        }

        return missing;
    }

    private static async Task<IReadOnlySet<string>> PresentKeysAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, ImmutableArray<string> keys, CancellationToken cancellationToken)
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand("SELECT QueryKey FROM OrleansQuery WHERE QueryKey = ANY($1)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = keys.ToArray() });
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            present.Add(reader.GetString(0));
        }

        return present;
    }

    /// <summary>What the script stores, as the server keeps it: each query's text and the gateway function's body.</summary>
    private sealed record ExpectedSchema(Dictionary<string, string> Queries, string GatewayFunctionBody)
    {
        internal static ExpectedSchema Parse(string script)
        {
            var queries = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(
                script, @"'(?<key>[A-Za-z]+)',\s*\$query\$(?<text>.*?)\$query\$", System.Text.RegularExpressions.RegexOptions.Singleline))
            {
                queries.Add(m.Groups["key"].Value, m.Groups["text"].Value);
            }

            System.Text.RegularExpressions.Match body = System.Text.RegularExpressions.Regex.Match(
                script, @"\$function\$(?<body>.*?)\$function\$", System.Text.RegularExpressions.RegexOptions.Singleline);
            if (!body.Success || !InstalledQueryKeys.All(queries.ContainsKey) || queries.Count != InstalledQueryKeys.Length)
            {
                throw new InvalidOperationException($"The embedded resource {ResourceName} does not have the expected shape (one $query$ text per installed key and one $function$ body).");
            }

            return new ExpectedSchema(queries, body.Groups["body"].Value);
        }
    }

    private static string LoadScript()
    {
        using Stream stream = typeof(PostgresMembershipSchema).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource {ResourceName} is missing from {typeof(PostgresMembershipSchema).Assembly.GetName().Name}.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
