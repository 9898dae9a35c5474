using Microsoft.AspNetCore.Http;
using OrleansLsn.Samples.TodoWeb;

namespace OrleansLsn.Bench.Web;

/// <summary>The <c>primary</c> policy: every read on the primary.</summary>
internal sealed class PrimaryReads : BenchReads
{
    public override (TodoDb Db, string Outcome, string Said) Open(HttpContext context) =>
        (Primary(context), "primary", "Read from the primary (benchmark policy: always the primary).");
}
