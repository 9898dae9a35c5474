using OrleansLsn.Replication;

namespace OrleansLsn.Hosting;

/// <summary>Builds one slot's <see cref="ReplicationPumpOptions"/> from the shared tuning and the slot's own settings.</summary>
internal static class PumpOptionsFactory
{
    internal static ReplicationPumpOptions Create(OrleansLsnOptions options, ReplicationSlotOptions slot, string? connectionString = null)
    {
        ReplicationPumpOptions t = options.Replication.Pump;
        var pump = new ReplicationPumpOptions
        {
            ConnectionString = connectionString ?? options.PrimaryConnectionString,
            SlotName = slot.Name,
            PublicationName = slot.Publication,
            CreateSlot = slot.CreateSlot,
            CreatePublication = slot.CreatePublication,
            Failover = slot.Failover,
            AcknowledgeWithoutSubscribers = t.AcknowledgeWithoutSubscribers,
            // A new activation holds the slot for the previous one's subscribers as long as an unreachable one is kept.
            RememberSubscribers = true,
            RejoinTimeout = options.Replication.SubscriberTimeout,
            CreatedSlotSnapshotLifetime = t.CreatedSlotSnapshotLifetime,
            HighWaterBytes = t.HighWaterBytes,
            LowWaterBytes = t.LowWaterBytes,
            HighWaterBatches = t.HighWaterBatches,
            LowWaterBatches = t.LowWaterBatches,
            MaxBatchChanges = t.MaxBatchChanges,
            MaxBatchBytes = t.MaxBatchBytes,
            MaxStatusInterval = t.MaxStatusInterval,
            MonitorInterval = t.MonitorInterval,
            QueryTimeout = t.QueryTimeout,
            ReconnectInitialDelay = t.ReconnectInitialDelay,
            ReconnectMaxDelay = t.ReconnectMaxDelay,
            SubscriberRetryInitialDelay = t.SubscriberRetryInitialDelay,
            SubscriberRetryMaxDelay = t.SubscriberRetryMaxDelay,
            ApplicationName = t.ApplicationName,
        };
        foreach (string table in slot.Tables)
        {
            pump.PublicationTables.Add(table);
        }

        foreach (string host in slot.Hosts)
        {
            pump.Hosts.Add(host);
        }

        return pump;
    }
}
