namespace OrleansLsn.Runtime.Messaging;

/// <summary>The identity of a grain in the cluster: its grain type (the grain class's name) and its key.</summary>
internal readonly record struct GrainId(string Type, string Key)
{
    public override string ToString() => $"{Type}/{Key}";
}
