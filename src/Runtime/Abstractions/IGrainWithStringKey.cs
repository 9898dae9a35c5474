namespace OrleansLsn.Runtime;

/// <summary>A grain whose identity is a string key (Orleans: <c>IGrainWithStringKey</c>).</summary>
public interface IGrainWithStringKey : IGrain
{
}
