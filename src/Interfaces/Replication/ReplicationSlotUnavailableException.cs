namespace OrleansLsn;

/// <summary>
/// <see cref="IReplicationGrain.Subscribe"/> could not fix the subscriber's start position in the slot: the slot does
/// not exist and cannot be created, the connection's role lacks a right, the server is not set up for logical
/// replication, or the slot was not ready within <c>OrleansLsn:Replication:SubscribeTimeout</c>. Nothing was subscribed;
/// <see cref="Kind"/> and the message say why, and the grain's pump keeps retrying, so subscribing again once the cause
/// is fixed works.
/// </summary>
[GenerateSerializer]
[Alias("OrleansLsn.ReplicationSlotUnavailableException")]
public sealed class ReplicationSlotUnavailableException : OrleansException
{
    /// <summary>Creates the exception for <paramref name="slot"/>.</summary>
    public ReplicationSlotUnavailableException(string slot, ReplicationErrorKind kind, string reason)
        : base($"Replication slot '{slot}' is not ready for a subscriber ({kind}): {reason} Nothing was subscribed.")
    {
        Slot = slot;
        Kind = kind;
    }

    /// <summary>Creates an exception with only a message.</summary>
    public ReplicationSlotUnavailableException(string message)
        : base(message)
    {
        Slot = "";
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public ReplicationSlotUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
        Slot = "";
    }

    /// <summary>Creates an empty exception (for serializers).</summary>
    public ReplicationSlotUnavailableException()
    {
        Slot = "";
    }

    /// <summary>The slot.</summary>
    [Id(0)]
    public string Slot { get; private set; }

    /// <summary>Why the slot is not ready.</summary>
    [Id(1)]
    public ReplicationErrorKind Kind { get; private set; }
}
