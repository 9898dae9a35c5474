using Microsoft.Extensions.DependencyInjection;

namespace OrleansLsn;

/// <summary>
/// Whether Orleans' activity propagation (<c>AddActivityPropagation</c>, or <c>Orleans:EnableDistributedTracing</c>) is
/// already registered: its grain call filters added twice would make two spans of every call. Compiled into the client
/// library and the grains.
/// </summary>
internal static class ActivityPropagation
{
    // Orleans' own (internal) filter type, registered by AddActivityPropagation on clients and silos alike.
    private const string OutgoingFilter = "Orleans.Runtime.ActivityPropagationOutgoingGrainCallFilter";

    internal static bool IsAdded(IServiceCollection services) =>
        services.Any(d => d.ServiceType == typeof(IOutgoingGrainCallFilter) && d.ImplementationType?.FullName == OutgoingFilter);
}
