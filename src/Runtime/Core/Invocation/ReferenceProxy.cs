using System.Reflection;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>
/// The runtime proxy behind a grain or observer reference. <see cref="DispatchProxy"/> builds one proxy type per
/// interface and caches it; a call looks its method up in a frozen dictionary and goes to the runtime, with no
/// reflection. Two references are equal when they address the same grain or observer.
/// </summary>
#pragma warning disable CA1852 // DispatchProxy derives the generated proxy types from this class.
internal class ReferenceProxy : DispatchProxy
#pragma warning restore CA1852
{
    private CallRuntime _runtime = null!;
    private InterfaceDescriptor _interface = null!;

    internal ReferenceAddress Address { get; private set; }

    internal InterfaceDescriptor Interface => _interface;

    public static object Create(InterfaceDescriptor descriptor, CallRuntime runtime, ReferenceAddress address)
    {
        var proxy = (ReferenceProxy)Create(descriptor.Type, typeof(ReferenceProxy));
        proxy._runtime = runtime;
        proxy._interface = descriptor;
        proxy.Address = address;
        return proxy;
    }

    public override bool Equals(object? obj) => obj is ReferenceProxy other && other.Address.Equals(Address);

    public override int GetHashCode() => Address.GetHashCode();

    public override string ToString() => $"{_interface.Type.Name} → {Address}";

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        if (targetMethod is null || !_interface.ByMethod.TryGetValue(targetMethod, out MethodDescriptor? method))
        {
            throw new NotSupportedException($"{targetMethod?.Name} is not a method of {_interface.Name}.");
        }

        return _runtime.Invoke(Address, method, args ?? []);
    }
}
