namespace OrleansLsn.Runtime;

/// <summary>
/// Marker for observer interfaces: objects living in a client (or a grain) that grains call back
/// (Orleans: <c>IGrainObserver</c>). Observer methods return <see cref="Task"/> or are one-way.
/// </summary>
public interface IGrainObserver : IAddressable
{
}
