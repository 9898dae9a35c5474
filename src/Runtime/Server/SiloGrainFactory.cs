namespace OrleansLsn.Runtime;

/// <summary>The grain factory inside a silo: references made here call through the silo's runtime.</summary>
internal sealed class SiloGrainFactory(SiloRuntime runtime) : IGrainFactory
{
    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey)
        where TGrainInterface : IGrainWithStringKey => runtime.GetGrain<TGrainInterface>(primaryKey);

    public TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver =>
        throw new NotSupportedException("Observers live in clients; inside a silo, pass a grain reference instead (AsReference<T>()).");

    public void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver =>
        throw new NotSupportedException("Observers live in clients; inside a silo there are no object references to delete.");
}
