using Xunit;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// Tests that measure process memory (GC heap or RSS). They run alone, after the parallel tests, so that other tests'
/// allocations do not disturb the figures.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurementCollection
{
    public const string Name = "Memory measurements";
}
