using Microsoft.Extensions.Logging;

namespace OrleansLsn.Membership;

public static partial class PostgresMembershipSchema
{
    /// <summary>Event ids of the membership schema, in one place (range 4100–4199).</summary>
    internal static class EventIds
    {
        internal const int Created = 4100;
        internal const int AlreadyPresent = 4101;
        internal const int Updated = 4102;
        internal const int NotApplied = 4103;
    }

    private static partial class Log
    {
        [LoggerMessage(EventIds.Created, LogLevel.Information, "Orleans membership schema created in database {Database}: tables {Tables}, {Queries} queries")]
        internal static partial void Created(ILogger logger, string database, string tables, int queries);

        [LoggerMessage(EventIds.AlreadyPresent, LogLevel.Information, "Orleans membership schema already present in database {Database} ({Queries} queries); nothing changed")]
        internal static partial void AlreadyPresent(ILogger logger, string database, int queries);

        [LoggerMessage(EventIds.Updated, LogLevel.Information, "Orleans membership schema updated in database {Database}: tables created {Tables}; queries added {Added}; queries replaced {Replaced}")]
        internal static partial void Updated(ILogger logger, string database, string tables, string added, string replaced);

        [LoggerMessage(EventIds.NotApplied, LogLevel.Warning, "Orleans membership schema is not applied in database {Database}: missing queries {Missing}")]
        internal static partial void NotApplied(ILogger logger, string database, string missing);
    }
}
