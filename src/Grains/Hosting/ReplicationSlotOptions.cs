namespace OrleansLsn.Hosting;

/// <summary>One slot the cluster may stream (<c>OrleansLsn:Replication:Slots:N</c>).</summary>
public sealed class ReplicationSlotOptions
{
    /// <summary>The logical replication slot: 1 to 63 characters from <c>a-z</c>, <c>0-9</c> and <c>_</c>. Required.</summary>
    public string Name { get; set; } = "";

    /// <summary>The publication to stream. Required.</summary>
    public string Publication { get; set; } = "";

    /// <summary>Tables of the publication if it has to be created (<c>table</c> or <c>schema.table</c>); empty: all tables.</summary>
    public IList<string> Tables { get; } = new List<string>();

    /// <summary>Create the slot when it is missing. Default <see langword="true"/>.</summary>
    public bool CreateSlot { get; set; } = true;

    /// <summary>Create the publication when it is missing. Default <see langword="true"/>.</summary>
    public bool CreatePublication { get; set; } = true;

    /// <summary>
    /// Keep the slot's grain (and its pump) running even without subscribers: every silo makes sure it is active,
    /// also after the silo hosting it died. Default <see langword="false"/>: the grain runs while it has subscribers.
    /// </summary>
    public bool AlwaysOn { get; set; }
}
