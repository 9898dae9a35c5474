namespace OrleansLsn.Runtime;

/// <summary>What a reference points at.</summary>
internal enum ReferenceKind : byte
{
    Grain = 1,
    Observer = 2,
}

/// <summary>
/// The address of a grain (interface id and key; the silo maps the interface to its grain class) or of an observer
/// (the client that created it and the observer's id). Equal addresses are equal references.
/// </summary>
internal readonly record struct ReferenceAddress(ReferenceKind Kind, uint InterfaceId, string Key, Guid ClientId, Guid ObserverId)
{
    public static ReferenceAddress ForGrain(uint interfaceId, string key) => new(ReferenceKind.Grain, interfaceId, key, Guid.Empty, Guid.Empty);

    public static ReferenceAddress ForObserver(uint interfaceId, Guid clientId, Guid observerId) =>
        new(ReferenceKind.Observer, interfaceId, string.Empty, clientId, observerId);

    public override string ToString() => Kind == ReferenceKind.Grain
        ? $"grain {InterfaceId:x8}/{Key}"
        : $"observer {ObserverId:N} of client {ClientId:N}";
}
