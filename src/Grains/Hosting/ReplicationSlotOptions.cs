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

    /// <summary>
    /// Create the slot as a failover slot (PostgreSQL 17+), so that it survives the promotion of a standby that
    /// synchronises slots (<c>sync_replication_slots = on</c>; see the README's "Failover slots"). Default
    /// <see langword="false"/>. On an older server the slot's pump reports an error naming the version and does not
    /// stream; an existing slot without failover is reported with the command that enables it.
    /// </summary>
    public bool Failover { get; set; }

    /// <summary>
    /// The servers that may be the primary for this slot (<c>host</c> or <c>host:port</c>), tried in order at each
    /// (re)connect; the pump streams from the first that is not in recovery. Empty (the default): the hosts of the
    /// connection string, which may itself list several (<c>Host=h1:5432,h2:5432</c>).
    /// </summary>
    public IList<string> Hosts { get; } = new List<string>();
}
