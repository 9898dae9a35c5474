using OrleansLsn.Replication;

namespace OrleansLsn.Hosting;

/// <summary>The slots a cluster may stream (section <c>OrleansLsn:Replication</c>).</summary>
public sealed class ReplicationOptions
{
    /// <summary>
    /// The slots that can be streamed through <see cref="IReplicationGrain"/>; a grain key that is not listed here is
    /// refused with <see cref="ReplicationSlotNotConfiguredException"/> before any SQL is sent. Default: none.
    /// </summary>
    public IList<ReplicationSlotOptions> Slots { get; } = new List<ReplicationSlotOptions>();

    /// <summary>
    /// A subscriber that cannot be reached (its client vanished, or a delivery neither completes nor fails) stops holding
    /// the slot after this time and is dropped, with a log line. A subscriber whose own code throws is not dropped: it
    /// gets the batch again with backoff. Default 30 s.
    /// </summary>
    public TimeSpan SubscriberTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest <see cref="IReplicationGrain.Subscribe"/> waits for its slot to be ready (created if needed, and taken
    /// by the grain's pump) before it fails with <see cref="ReplicationSlotUnavailableException"/>. Creating a slot waits
    /// for the transactions running on the primary, so a long transaction there delays a first subscriber. Default 20 s,
    /// under Orleans' 30 s response timeout; between 100 ms and 5 min. Key <c>OrleansLsn:Replication:SubscribeTimeout</c>.
    /// </summary>
    public TimeSpan SubscribeTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How often every silo makes sure the grains of <see cref="ReplicationSlotOptions.AlwaysOn"/> slots are active
    /// (after a silo failure, the longest such a slot stays without a pump). Default 10 s.
    /// </summary>
    public TimeSpan AlwaysOnCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Tuning shared by every slot's pump (water marks, batch limits, intervals, backoff); see
    /// <see cref="ReplicationPumpOptions"/>. Its connection string, slot, publication and tables are ignored here:
    /// they come from <see cref="OrleansLsnOptions.PrimaryConnectionString"/> and <see cref="Slots"/>.
    /// </summary>
    public ReplicationPumpOptions Pump { get; set; } = new();

    /// <summary>
    /// Most observers subscribed to one slot's grain (<see cref="IReplicationGrain.Subscribe"/>); a new one past it is
    /// refused with <see cref="LimitExceededException"/> (subscribing again with the same observer always works). Each
    /// subscriber has its own delivery loop and holds the slot's flush position, so this bounds both. Default 10 000.
    /// Key <c>OrleansLsn:Replication:MaxSubscribers</c>.
    /// </summary>
    public int MaxSubscribers { get; set; } = 10_000;
}
