using System.CommandLine;
using Microsoft.Extensions.Configuration;
using Npgsql;
using OrleansLsn.Database;
using OrleansLsn.Hosting;
using OrleansLsn.Membership;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>database-roles</c>: the least-privilege roles of a deployment (<see cref="DatabaseRoles"/>). Prints the SQL (with
/// the membership schema before it, in one transaction) for operators who manage roles themselves, or with
/// <c>--apply</c> runs it over a superuser's connection string read from a file or the environment, never from the
/// command line. Role passwords come from files (or environment variables) and are sent only as SCRAM-SHA-256
/// verifiers. The publications of the slots configured for the silos (<c>OrleansLsn:Replication:Slots</c>, from the
/// environment or <c>--OrleansLsn:...</c> arguments) are created if missing.
/// </summary>
internal static class DatabaseRolesCommand
{
    /// <summary>Environment variable with the owner's connection string when <c>--owner-connection-string-file</c> is not given.</summary>
    internal const string OwnerEnvironmentVariable = "ORLEANSLSN_OWNER_CONNECTION_STRING";

    internal static Command Create()
    {
        var apply = new Option<bool>("--apply") { Description = "Run the SQL (membership schema, roles, grants, publications) instead of printing it." };
        var ownerFile = new Option<string?>("--owner-connection-string-file")
        {
            Description = $"File holding a superuser's connection string to the membership database (for --apply). Default: the environment variable {OwnerEnvironmentVariable}. Never on the command line.",
        };
        var siloRole = new Option<string>("--silo-role") { Description = "Silo role name.", DefaultValueFactory = _ => DatabaseRolesOptions.DefaultSiloRole };
        var clientRole = new Option<string>("--client-role") { Description = "Client role name.", DefaultValueFactory = _ => DatabaseRolesOptions.DefaultClientRole };
        var trackerRole = new Option<string>("--tracker-role") { Description = "Tracker role name.", DefaultValueFactory = _ => DatabaseRolesOptions.DefaultTrackerRole };
        var siloPassword = new Option<string?>("--silo-password-file") { Description = "File holding the silo role's password (default: ORLEANSLSN_SILO_ROLE_PASSWORD; neither: the password is left as it is)." };
        var clientPassword = new Option<string?>("--client-password-file") { Description = "File holding the client role's password (default: ORLEANSLSN_CLIENT_ROLE_PASSWORD)." };
        var trackerPassword = new Option<string?>("--tracker-password-file") { Description = "File holding the tracker role's password (default: ORLEANSLSN_TRACKER_ROLE_PASSWORD)." };
        var database = new Option<string?>("--database") { Description = "The membership database (printing: default postgres; --apply: the connection's)." };
        var replicaDatabase = new Option<string?>("--replica-database") { Description = "The database the trackers connect to on the replicas (default: --database)." };
        var schema = new Option<string?>("--schema") { Description = "The schema of the membership tables (printing: default public; --apply: the connection's current schema)." };
        var rolesOnly = new Option<bool>("--roles-only") { Description = "Print only the roles' SQL, not the membership schema before it." };
        var command = new Command(
            "database-roles",
            "Least-privilege PostgreSQL roles: a silo role (membership rows, REPLICATION for the configured slots), a client role (the gateway query only) and a tracker role " +
            "(connect to the replica, no table rights). Prints idempotent SQL, or runs it with --apply over a superuser connection string from a file or the environment. " +
            "The configured slots' publications (OrleansLsn:Replication:Slots, e.g. OrleansLsn__Replication__Slots__0__Publication) are created if missing.")
        {
            apply, ownerFile, siloRole, clientRole, trackerRole, siloPassword, clientPassword, trackerPassword, database, replicaDatabase, schema, rolesOnly,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            var failures = new List<string>();
            var options = new DatabaseRolesOptions
            {
                SiloRole = result.GetValue(siloRole)!,
                ClientRole = result.GetValue(clientRole)!,
                TrackerRole = result.GetValue(trackerRole)!,
                SiloPasswordVerifier = Verifier("--silo-password-file", result.GetValue(siloPassword), "ORLEANSLSN_SILO_ROLE_PASSWORD", failures),
                ClientPasswordVerifier = Verifier("--client-password-file", result.GetValue(clientPassword), "ORLEANSLSN_CLIENT_ROLE_PASSWORD", failures),
                TrackerPasswordVerifier = Verifier("--tracker-password-file", result.GetValue(trackerPassword), "ORLEANSLSN_TRACKER_ROLE_PASSWORD", failures),
                Database = result.GetValue(database),
                ReplicaDatabase = result.GetValue(replicaDatabase),
                Schema = result.GetValue(schema),
            };
            foreach (DatabasePublication publication in ConfiguredPublications([.. result.UnmatchedTokens]))
            {
                options.Publications.Add(publication);
            }

            failures.AddRange(DatabaseRoles.Validate(options));
            bool applying = result.GetValue(apply);
            string? owner = null;
            if (applying)
            {
                string? file = result.GetValue(ownerFile);
                owner = file is not null
                    ? SecretFile.TryRead("--owner-connection-string-file", file, failures)
                    : Environment.GetEnvironmentVariable(OwnerEnvironmentVariable);
                if (file is null && string.IsNullOrWhiteSpace(owner))
                {
                    failures.Add($"--apply needs a superuser's connection string: --owner-connection-string-file FILE or the environment variable {OwnerEnvironmentVariable}.");
                }
            }

            if (failures.Count > 0)
            {
                await Console.Error.WriteLineAsync($"database-roles: {failures.Count} problem(s); nothing was done:");
                foreach (string failure in failures)
                {
                    await Console.Error.WriteLineAsync("  - " + failure);
                }

                return 2;
            }

            if (!applying)
            {
                options.Database ??= "postgres";
                string roles = DatabaseRoles.GenerateSql(options);
                Console.WriteLine("BEGIN;");
                if (!result.GetValue(rolesOnly))
                {
                    Console.WriteLine(PostgresMembershipSchema.SetupSql.TrimEnd());
                    Console.WriteLine();
                }

                Console.Write(roles);
                Console.WriteLine("COMMIT;");
                return 0;
            }

            try
            {
                await DatabaseRoles.ApplyAsync(owner!, options, null, cancellationToken);
                Console.WriteLine($"database-roles: applied: silo role {options.SiloRole}, client role {options.ClientRole}, tracker role {options.TrackerRole}, {options.Publications.Count} publication(s).");
                return 0;
            }
            catch (PostgresException e)
            {
                await Console.Error.WriteLineAsync($"database-roles: the server refused ({e.SqlState}: {e.MessageText}); nothing was changed. Run it as a superuser, after the tables of the publications exist.");
                return 1;
            }
            catch (Exception e) when (e is NpgsqlException or MembershipSchemaException or ArgumentException or TimeoutException)
            {
                // Npgsql's messages carry no password; the connection string is never printed.
                await Console.Error.WriteLineAsync($"database-roles: {e.GetType().Name}: {e.Message}");
                return 1;
            }
        });
        return command;
    }

    /// <summary>The publications of <c>OrleansLsn:Replication:Slots</c> (environment, <c>appsettings.json</c> and <c>--OrleansLsn:...</c> arguments).</summary>
    private static IEnumerable<DatabasePublication> ConfiguredPublications(string[] arguments)
    {
        IConfiguration configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(arguments)
            .Build();
        var replication = new ReplicationOptions();
        configuration.GetSection(OrleansLsnOptions.SectionName).GetSection("Replication").Bind(replication);
        return replication.Slots
            .Where(s => !string.IsNullOrEmpty(s.Publication))
            .GroupBy(s => s.Publication, StringComparer.Ordinal)
            .Select(g => new DatabasePublication(g.Key, [.. g.SelectMany(s => s.Tables).Distinct(StringComparer.Ordinal)]));
    }

    private static string? Verifier(string option, string? file, string environmentVariable, List<string> failures)
    {
        string? password = file is not null ? SecretFile.TryRead(option, file, failures) : Environment.GetEnvironmentVariable(environmentVariable);
        if (string.IsNullOrEmpty(password))
        {
            return null;
        }

        try
        {
            return ScramVerifier.Compute(password);
        }
        catch (ArgumentException e)
        {
            failures.Add($"{(file is not null ? option : environmentVariable)}: {e.Message}");
            return null;
        }
    }
}
