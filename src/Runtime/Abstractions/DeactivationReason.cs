namespace OrleansLsn.Runtime;

/// <summary>Why an activation is being deactivated (Orleans: <c>DeactivationReasonCode</c>).</summary>
public enum DeactivationReasonCode
{
    /// <summary>No reason given.</summary>
    None,

    /// <summary>The activation was idle for longer than the collection age.</summary>
    ActivationIdle,

    /// <summary>The grain called <c>DeactivateOnIdle</c>.</summary>
    ApplicationRequested,

    /// <summary>The silo is shutting down.</summary>
    ShuttingDown,

    /// <summary><c>OnActivateAsync</c> failed.</summary>
    ActivationFailed,
}

/// <summary>Why an activation is being deactivated, with a description for logs (Orleans: <c>DeactivationReason</c>).</summary>
public readonly record struct DeactivationReason(DeactivationReasonCode ReasonCode, string Description)
{
    /// <inheritdoc />
    public override string ToString() => $"{ReasonCode}: {Description}";
}
