using Microsoft.Extensions.DependencyInjection;
using OrleansLsn.Runtime.Invocation;

namespace OrleansLsn.Runtime;

/// <summary>A registered grain class: how to create it and how it schedules.</summary>
internal sealed class GrainClass
{
    public GrainClass(Type type, IReadOnlyList<InterfaceDescriptor> interfaces)
    {
        Type = type;
        TypeName = type.FullName ?? type.Name;
        Interfaces = interfaces;
        IsReentrant = type.IsDefined(typeof(ReentrantAttribute), inherit: true);
        KeepAlive = type.IsDefined(typeof(KeepAliveAttribute), inherit: true);
        Factory = ActivatorUtilities.CreateFactory(type, []);
    }

    public Type Type { get; }

    /// <summary>The grain type in grain ids.</summary>
    public string TypeName { get; }

    public IReadOnlyList<InterfaceDescriptor> Interfaces { get; }

    public bool IsReentrant { get; }

    public bool KeepAlive { get; }

    public ObjectFactory Factory { get; }
}

/// <summary>A grain class added with <c>AddGrain</c>.</summary>
internal sealed record GrainClassRegistration(Type GrainType);

/// <summary>Maps interface ids to the grain classes that implement them.</summary>
internal sealed class GrainTypeRegistry
{
    private readonly Dictionary<uint, GrainClass> _byInterface = [];

    public GrainTypeRegistry(IEnumerable<GrainClassRegistration> registrations, InterfaceRegistry interfaces)
    {
        foreach (Type type in registrations.Select(r => r.GrainType).Distinct())
        {
            if (!typeof(Grain).IsAssignableFrom(type) || type.IsAbstract || type.IsGenericTypeDefinition)
            {
                throw new ArgumentException($"{type.FullName} is not a concrete class derived from Grain.");
            }

            var descriptors = type.GetInterfaces()
                .Where(i => typeof(IGrain).IsAssignableFrom(i) && i != typeof(IGrain) && i != typeof(IGrainWithStringKey))
                .Select(interfaces.Get)
                .ToList();
            if (descriptors.Count == 0)
            {
                throw new ArgumentException($"{type.FullName} implements no grain interface.");
            }

            var grainClass = new GrainClass(type, descriptors);
            foreach (InterfaceDescriptor descriptor in descriptors)
            {
                if (_byInterface.TryGetValue(descriptor.Id, out GrainClass? other) && other.Type != type)
                {
                    throw new ArgumentException($"Both {other.Type.FullName} and {type.FullName} implement {descriptor.Name}; one grain class per interface.");
                }

                _byInterface[descriptor.Id] = grainClass;
            }

            Classes.Add(grainClass);
        }
    }

    public List<GrainClass> Classes { get; } = [];

    public bool TryGet(uint interfaceId, out GrainClass grainClass) => _byInterface.TryGetValue(interfaceId, out grainClass!);
}
