using Xunit;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// Tests that pause replay or stop the shared standby. They run alone, after the parallel tests, so they never disturb
/// a test that expects the standby to replay.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StandbyControlCollection
{
    public const string Name = "Standby control";
}
