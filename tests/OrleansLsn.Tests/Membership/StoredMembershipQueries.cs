using System.Data;
using System.Data.Common;
using Npgsql;

namespace OrleansLsn.Tests.Membership;

/// <summary>One silo row as the provider writes and reads it (SiloStatus as its integer: 3 Active, 6 Dead).</summary>
public sealed record SiloRow(
    string Address,
    int Port,
    int Generation,
    string SiloName,
    string HostName,
    int Status,
    int ProxyPort,
    string? SuspectTimes,
    DateTime StartTime,
    DateTime IAmAliveTime);

/// <summary>What the read queries return: the deployment's version and its silo rows.</summary>
public sealed record MembershipSnapshot(int Version, IReadOnlyList<SiloRow> Silos);

/// <summary>
/// Runs the query texts stored in <c>OrleansQuery</c> exactly as Orleans' ADO.NET clustering provider 10.4.2 does:
/// through the <see cref="DbProviderFactory"/> it loads for "Npgsql", one command per call, parameters bound by name
/// without the '@' and typed with the provider's <see cref="DbType"/>s (Address as AnsiString, integers as Int32, times
/// as DateTime, SuspectTimes as String or DBNull), and results read the way it reads them (a single boolean column; or
/// the version plus silo columns by name, a NULL StartTime meaning "no silo in this row").
/// </summary>
public sealed class StoredMembershipQueries
{
    internal const int Active = 3;
    internal const int ShuttingDown = 4;
    internal const int Joining = 2;
    internal const int Dead = 6;

    private readonly string _connectionString;
    private readonly Dictionary<string, string> _queries;

    private StoredMembershipQueries(string connectionString, Dictionary<string, string> queries)
    {
        _connectionString = connectionString;
        _queries = queries;
    }

    public static async Task<StoredMembershipQueries> LoadAsync(string connectionString, CancellationToken cancellationToken)
    {
        var queries = new Dictionary<string, string>(StringComparer.Ordinal);
        await using DbConnection connection = await OpenAsync(connectionString, cancellationToken);
        await using DbCommand command = connection.CreateCommand();
        command.CommandText = "SELECT QueryKey, QueryText FROM OrleansQuery";
        await using DbDataReader reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            queries.Add((string)reader["QueryKey"], (string)reader["QueryText"]);
        }

        return new StoredMembershipQueries(connectionString, queries);
    }

    public Task<bool> InsertMembershipVersionAsync(string deploymentId, CancellationToken cancellationToken) =>
        ReadBooleanAsync("InsertMembershipVersionKey", c => Add(c, "DeploymentId", deploymentId), cancellationToken);

    public Task<bool> InsertMembershipAsync(string deploymentId, SiloRow silo, int version, CancellationToken cancellationToken) =>
        ReadBooleanAsync("InsertMembershipKey", c =>
        {
            // The provider's order of assignment in InsertMembershipRowAsync.
            Add(c, "DeploymentId", deploymentId);
            Add(c, "IAmAliveTime", silo.IAmAliveTime);
            Add(c, "SiloName", silo.SiloName);
            Add(c, "HostName", silo.HostName);
            AddSiloAddress(c, silo.Address, silo.Port, silo.Generation);
            Add(c, "StartTime", silo.StartTime);
            Add(c, "Status", silo.Status);
            Add(c, "ProxyPort", silo.ProxyPort);
            Add(c, "Version", version);
        }, cancellationToken);

    public Task<bool> UpdateMembershipAsync(string deploymentId, SiloRow silo, int version, CancellationToken cancellationToken) =>
        ReadBooleanAsync("UpdateMembershipKey", c =>
        {
            Add(c, "DeploymentId", deploymentId);
            AddSiloAddress(c, silo.Address, silo.Port, silo.Generation);
            Add(c, "IAmAliveTime", silo.IAmAliveTime);
            Add(c, "Status", silo.Status);
            Add(c, "SuspectTimes", silo.SuspectTimes);
            Add(c, "Version", version);
        }, cancellationToken);

    public Task<int> UpdateIAmAliveAsync(string deploymentId, SiloRow silo, DateTime iAmAliveTime, CancellationToken cancellationToken) =>
        ExecuteAsync("UpdateIAmAlivetimeKey", c =>
        {
            Add(c, "DeploymentId", deploymentId);
            AddSiloAddress(c, silo.Address, silo.Port, silo.Generation);
            Add(c, "IAmAliveTime", iAmAliveTime);
        }, cancellationToken);

    public Task<MembershipSnapshot> ReadRowAsync(string deploymentId, SiloRow silo, CancellationToken cancellationToken) =>
        ReadMembershipAsync("MembershipReadRowKey", c =>
        {
            Add(c, "DeploymentId", deploymentId);
            AddSiloAddress(c, silo.Address, silo.Port, silo.Generation);
        }, cancellationToken);

    public Task<MembershipSnapshot> ReadAllAsync(string deploymentId, CancellationToken cancellationToken) =>
        ReadMembershipAsync("MembershipReadAllKey", c => Add(c, "DeploymentId", deploymentId), cancellationToken);

    public async Task<IReadOnlyList<(string Address, int ProxyPort, int Generation)>> GatewaysAsync(string deploymentId, CancellationToken cancellationToken)
    {
        var gateways = new List<(string, int, int)>();
        await using DbConnection connection = await OpenAsync(_connectionString, cancellationToken);
        await using DbCommand command = Create(connection, "GatewaysQueryKey");
        Add(command, "DeploymentId", deploymentId);
        Add(command, "Status", Active);
        await using DbDataReader reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            gateways.Add(((string)reader["Address"], reader.GetInt32(reader.GetOrdinal("ProxyPort")), reader.GetInt32(reader.GetOrdinal("Generation"))));
        }

        return gateways;
    }

    public Task<int> DeleteMembershipTableEntriesAsync(string deploymentId, CancellationToken cancellationToken) =>
        ExecuteAsync("DeleteMembershipTableEntriesKey", c => Add(c, "DeploymentId", deploymentId), cancellationToken);

    public Task<int> CleanupDefunctSiloEntriesAsync(string deploymentId, DateTimeOffset beforeDate, CancellationToken cancellationToken) =>
        ExecuteAsync("CleanupDefunctSiloEntriesKey", c =>
        {
            Add(c, "DeploymentId", deploymentId);
            Add(c, "IAmAliveTime", beforeDate.UtcDateTime);
        }, cancellationToken);

    /// <summary>The optional per-silo cleanup, with the values the provider captured when it read the row.</summary>
    public Task<int> CleanupDefunctSiloEntryAsync(string deploymentId, SiloRow captured, CancellationToken cancellationToken) =>
        ExecuteAsync("CleanupDefunctSiloEntryKey", c =>
        {
            Add(c, "DeploymentId", deploymentId);
            AddSiloAddress(c, captured.Address, captured.Port, captured.Generation);
            Add(c, "SuspectTimes", captured.SuspectTimes);
            Add(c, "StartTime", captured.StartTime);
            Add(c, "IAmAliveTime", captured.IAmAliveTime);
        }, cancellationToken);

    private static async Task<DbConnection> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        // The provider takes NpgsqlFactory.Instance by reflection and opens a fresh connection per call.
        DbConnection connection = NpgsqlFactory.Instance.CreateConnection()!;
        connection.ConnectionString = connectionString;
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    private static void AddSiloAddress(DbCommand command, string address, int port, int generation)
    {
        Add(command, "Address", address, DbType.AnsiString);
        Add(command, "Port", port);
        Add(command, "Generation", generation);
    }

    private static void Add<T>(DbCommand command, string name, T value, DbType? dbType = null)
    {
        DbParameter parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = (object?)value ?? DBNull.Value;
        parameter.DbType = dbType ?? TypeOf(typeof(T));
        parameter.Direction = ParameterDirection.Input;
        command.Parameters.Add(parameter);
    }

    private static DbType TypeOf(Type type)
    {
        if (type == typeof(int))
        {
            return DbType.Int32;
        }

        if (type == typeof(DateTime))
        {
            return DbType.DateTime;
        }

        if (type == typeof(string))
        {
            return DbType.String;
        }

        throw new ArgumentOutOfRangeException(nameof(type), type, "not a type the membership provider binds");
    }

    private DbCommand Create(DbConnection connection, string key)
    {
        DbCommand command = connection.CreateCommand();
        command.CommandText = _queries[key];
        return command;
    }

    private async Task<bool> ReadBooleanAsync(string key, Action<DbCommand> bind, CancellationToken cancellationToken)
    {
        var values = new List<bool>();
        await using DbConnection connection = await OpenAsync(_connectionString, cancellationToken);
        await using DbCommand command = Create(connection, key);
        bind(command);
        await using DbDataReader reader = await command.ExecuteReaderAsync(cancellationToken);
        do
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                if (reader.FieldCount != 1)
                {
                    throw new InvalidOperationException($"{key} returned {reader.FieldCount} columns; the provider expects a single column");
                }

                values.Add(Convert.ToBoolean(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        while (await reader.NextResultAsync(cancellationToken));

        // The provider takes First(): no row at all would be an exception there.
        return values.Count == 1 ? values[0] : throw new InvalidOperationException($"{key} returned {values.Count} rows; the provider expects one");
    }

    private async Task<int> ExecuteAsync(string key, Action<DbCommand> bind, CancellationToken cancellationToken)
    {
        await using DbConnection connection = await OpenAsync(_connectionString, cancellationToken);
        await using DbCommand command = Create(connection, key);
        bind(command);
        await using DbDataReader reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.NextResultAsync(cancellationToken))
        {
        }

        return reader.RecordsAffected;
    }

    private async Task<MembershipSnapshot> ReadMembershipAsync(string key, Action<DbCommand> bind, CancellationToken cancellationToken)
    {
        var silos = new List<SiloRow>();
        int? version = null;
        await using DbConnection connection = await OpenAsync(_connectionString, cancellationToken);
        await using DbCommand command = Create(connection, key);
        bind(command);
        await using DbDataReader reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            int rowVersion = Convert.ToInt32(reader["Version"], System.Globalization.CultureInfo.InvariantCulture);
            version ??= rowVersion;
            if (rowVersion != version)
            {
                throw new InvalidOperationException($"{key} returned rows of versions {version} and {rowVersion}");
            }

            int startOrdinal = reader.GetOrdinal("StartTime");
            if (reader.IsDBNull(startOrdinal))
            {
                continue;
            }

            int suspectOrdinal = reader.GetOrdinal("SuspectTimes");
            silos.Add(new SiloRow(
                (string)reader["Address"],
                reader.GetInt32(reader.GetOrdinal("Port")),
                reader.GetInt32(reader.GetOrdinal("Generation")),
                (string)reader["SiloName"],
                (string)reader["HostName"],
                reader.GetInt32(reader.GetOrdinal("Status")),
                reader.GetInt32(reader.GetOrdinal("ProxyPort")),
                reader.IsDBNull(suspectOrdinal) ? null : reader.GetString(suspectOrdinal),
                DateTime.SpecifyKind(reader.GetDateTime(startOrdinal), DateTimeKind.Utc),
                DateTime.SpecifyKind(reader.GetDateTime(reader.GetOrdinal("IAmAliveTime")), DateTimeKind.Utc)));
        }

        // The provider reads the version from the first row: a deployment with no row is an error there.
        return version is int v
            ? new MembershipSnapshot(v, silos)
            : throw new InvalidOperationException($"{key} returned no row (no version row for the deployment)");
    }
}
