namespace OrleansLsn;

/// <summary>
/// A call would take a grain past one of its configured caps (pending waiters of a tracker, subscribers of a tracker or
/// of a replication slot). Nothing was registered; earlier waiters and subscribers are untouched, and the same call
/// succeeds again once the count drops below the cap. The message names the cap and its configuration key.
/// </summary>
[GenerateSerializer]
[Alias("OrleansLsn.LimitExceededException")]
public sealed class LimitExceededException : OrleansException
{
    /// <summary>Creates the exception for the cap configured by <paramref name="key"/>.</summary>
    /// <param name="key">The configuration key of the cap, for example <c>OrleansLsn:Tracker:MaxPendingWaiters</c>.</param>
    /// <param name="limit">The cap in force.</param>
    /// <param name="what">What reached the cap, for example "the tracker of region 'eu-west'".</param>
    /// <param name="counted">What is counted, for example "pending waiters".</param>
    public LimitExceededException(string key, int limit, string what, string counted)
        : base($"{what} already has {limit} {counted}, the cap set by {key}. Retry after some of them finish, or raise {key}.")
    {
        Key = key;
        Limit = limit;
    }

    /// <summary>Creates an exception with only a message.</summary>
    public LimitExceededException(string message)
        : base(message)
    {
        Key = "";
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public LimitExceededException(string message, Exception innerException)
        : base(message, innerException)
    {
        Key = "";
    }

    /// <summary>Creates an empty exception (for serializers).</summary>
    public LimitExceededException()
    {
        Key = "";
    }

    /// <summary>The configuration key of the cap (<c>OrleansLsn:...</c>).</summary>
    [Id(0)]
    public string Key { get; private set; }

    /// <summary>The cap that was in force.</summary>
    [Id(1)]
    public int Limit { get; private set; }
}
