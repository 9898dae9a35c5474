namespace OrleansLsn;

/// <summary>
/// The slot asked for is not one of the slots this cluster may stream (<c>OrleansLsn:Replication:Slots</c>), or its
/// name is not a valid slot name. Nothing was sent to PostgreSQL. The message names the configured slots.
/// </summary>
[GenerateSerializer]
[Alias("OrleansLsn.ReplicationSlotNotConfiguredException")]
public sealed class ReplicationSlotNotConfiguredException : OrleansException
{
    /// <summary>Creates the exception for <paramref name="slot"/>, listing the configured slots.</summary>
    public ReplicationSlotNotConfiguredException(string slot, IReadOnlyCollection<string> configuredSlots, string? reason = null)
        : base(Describe(slot, configuredSlots, reason))
    {
        Slot = slot;
        ConfiguredSlots = [.. configuredSlots];
    }

    /// <summary>Creates an exception with only a message.</summary>
    public ReplicationSlotNotConfiguredException(string message)
        : base(message)
    {
        Slot = "";
        ConfiguredSlots = [];
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public ReplicationSlotNotConfiguredException(string message, Exception innerException)
        : base(message, innerException)
    {
        Slot = "";
        ConfiguredSlots = [];
    }

    /// <summary>Creates an empty exception (for serializers).</summary>
    public ReplicationSlotNotConfiguredException()
    {
        Slot = "";
        ConfiguredSlots = [];
    }

    /// <summary>The slot that was asked for (shortened if absurdly long).</summary>
    [Id(0)]
    public string Slot { get; private set; }

    /// <summary>The slots this cluster may stream.</summary>
    [Id(1)]
    public IReadOnlyList<string> ConfiguredSlots { get; private set; }

    private static string Describe(string slot, IReadOnlyCollection<string> configuredSlots, string? reason)
    {
        string shown = slot.Length > 80 ? slot[..80] + "..." : slot;
        shown = new string(shown.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        string configured = configuredSlots.Count == 0
            ? "No slot is configured (OrleansLsn:Replication:Slots)."
            : "Configured slots: " + string.Join(", ", configuredSlots.Order(StringComparer.Ordinal).Select(s => "'" + s + "'")) + ".";
        return $"Replication slot '{shown}' cannot be streamed: {reason ?? "it is not configured in OrleansLsn:Replication:Slots"}. {configured}";
    }
}
