namespace OrleansLsn.Tests.Cluster;

/// <summary>The replication slots the test clusters may stream: one per test, each with its own table and publication.</summary>
public static class TestSlots
{
    public const string Order = "cl_order";
    public const string Backpressure = "cl_backpressure";
    public const string Pause = "cl_pause";
    public const string Throwing = "cl_throwing";
    public const string Vanishing = "cl_vanishing";
    public const string Failover = "cl_failover";
    public const string Lifetime = "cl_lifetime";
    public const string AlwaysOn = "cl_always";
    public const string FailoverAlwaysOn = "cl_failover_always";
    public const string ClientChanges = "cl_client_changes";
    public const string ClientDispose = "cl_client_dispose";
    public const string Limits = "cl_limits";
    public const string First = "cl_first";
    public const string Blocked = "cl_blocked";
    public const string NoPublication = "cl_no_publication";
    public const string ClientFirst = "cl_client_first";
    public const string Snapshot = "cl_snapshot";

    /// <summary>The slots of the shared cluster's tests.</summary>
    public static readonly string[] Shared = [Order, Backpressure, Pause, Throwing, Vanishing, Lifetime, AlwaysOn, ClientChanges, ClientDispose, First, Blocked, NoPublication, ClientFirst, Snapshot];

    /// <summary>Slots configured with <c>CreatePublication = false</c> (their publication never exists).</summary>
    public static readonly string[] WithoutPublicationCreation = [NoPublication];

    /// <summary>The slots of the failover tests.</summary>
    public static readonly string[] FailoverSlots = [Failover, FailoverAlwaysOn];

    /// <summary>The slots of the limits tests' cluster.</summary>
    public static readonly string[] LimitsSlots = [Limits];

    /// <summary>Every slot a test cluster is configured with (the same list in every cluster, as in production).</summary>
    public static readonly string[] All = [.. Shared, .. FailoverSlots, .. LimitsSlots];

    public static string Table(string slot) => "r_" + slot;

    public static string Publication(string slot) => "p_" + slot;
}
