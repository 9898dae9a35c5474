namespace OrleansLsn.Runtime;

/// <summary>A client connected to the cluster through a gateway silo (Orleans: <c>IClusterClient</c>).</summary>
public interface IClusterClient : IGrainFactory
{
    /// <summary>The client's services.</summary>
    IServiceProvider ServiceProvider { get; }
}
