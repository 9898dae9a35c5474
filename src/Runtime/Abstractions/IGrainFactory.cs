namespace OrleansLsn.Runtime;

/// <summary>Creates references to grains and to local observer objects (Orleans: <c>IGrainFactory</c>).</summary>
public interface IGrainFactory
{
    /// <summary>A reference to the grain with this key. No call is made; the grain is activated on its first call.</summary>
    /// <exception cref="ArgumentException">The interface is not a registered grain interface, or the key is empty.</exception>
    TGrainInterface GetGrain<TGrainInterface>(string primaryKey)
        where TGrainInterface : IGrainWithStringKey;

    /// <summary>
    /// Makes <paramref name="obj"/> callable by grains: the returned reference can be passed to grain methods, and calls on
    /// it reach <paramref name="obj"/> in this process. The reference stays valid across reconnects until
    /// <see cref="DeleteObjectReference{TGrainObserverInterface}"/> is called.
    /// </summary>
    TGrainObserverInterface CreateObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver;

    /// <summary>Stops calls to a reference made by <see cref="CreateObjectReference{TGrainObserverInterface}"/>; later calls fail.</summary>
    void DeleteObjectReference<TGrainObserverInterface>(IGrainObserver obj)
        where TGrainObserverInterface : IGrainObserver;
}
