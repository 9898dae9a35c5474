namespace OrleansLsn.Runtime;

/// <summary>Anything that can be addressed by the runtime: a grain or a grain observer (Orleans: <c>IAddressable</c>).</summary>
public interface IAddressable
{
}
