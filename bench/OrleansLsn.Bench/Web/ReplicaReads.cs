using Microsoft.AspNetCore.Http;
using OrleansLsn.Samples.TodoWeb;

namespace OrleansLsn.Bench.Web;

/// <summary>The <c>replica</c> policy: every read on the region's replica, whatever the user wrote.</summary>
internal sealed class ReplicaReads : BenchReads
{
    public override (TodoDb Db, string Outcome, string Said) Open(HttpContext context) =>
        (Replica(context), "replica", "Read from the replica (benchmark policy: always the replica).");
}
