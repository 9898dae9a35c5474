using System.Collections.Frozen;
using System.Reflection;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>A grain or observer interface: its wire id and its methods, built once by <see cref="InterfaceRegistry"/>.</summary>
internal sealed class InterfaceDescriptor
{
    public InterfaceDescriptor(Type type, string name, bool isObserver)
    {
        Type = type;
        Name = name;
        Id = StableId.Of(name);
        IsObserver = isObserver;
    }

    public Type Type { get; }

    /// <summary>The wire name: the <see cref="AliasAttribute"/> or the full name.</summary>
    public string Name { get; }

    public uint Id { get; }

    public bool IsObserver { get; }

    public IReadOnlyList<MethodDescriptor> Methods { get; private set; } = [];

    public FrozenDictionary<uint, MethodDescriptor> ById { get; private set; } = FrozenDictionary<uint, MethodDescriptor>.Empty;

    public FrozenDictionary<MethodInfo, MethodDescriptor> ByMethod { get; private set; } = FrozenDictionary<MethodInfo, MethodDescriptor>.Empty;

    internal void SetMethods(IReadOnlyList<MethodDescriptor> methods)
    {
        Methods = methods;
        ById = methods.ToFrozenDictionary(m => m.Id);
        ByMethod = methods.ToFrozenDictionary(m => m.Method);
    }

    public override string ToString() => Name;
}
