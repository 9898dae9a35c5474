using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OrleansLsn.Client;
using OrleansLsn.Samples.TodoWeb;

namespace OrleansLsn.Bench.Web;

/// <summary>
/// A read policy of the benchmark, in place of the sample's own <see cref="TodoReads"/>: the primary's context (the
/// sample's write context) or a context over the region's replica (<see cref="ReadRouter.Replica"/>).
/// </summary>
internal abstract class BenchReads : TodoReads
{
    private DbContextOptions<TodoDb>? _replicaOptions;

    /// <summary>The request's primary context (the sample's scoped <see cref="TodoDb"/>).</summary>
    protected static TodoDb Primary(HttpContext context) => context.RequestServices.GetRequiredService<TodoDb>();

    /// <summary>A new read-only context over the region's replica, disposed with the request.</summary>
    protected TodoDb Replica(HttpContext context)
    {
        DbContextOptions<TodoDb> options = _replicaOptions ??= new DbContextOptionsBuilder<TodoDb>()
            .UseNpgsql(context.RequestServices.GetRequiredService<ReadRouter>().Replica)
            .UseQueryTrackingBehavior(QueryTrackingBehavior.NoTracking)
            .Options;
        var db = new TodoDb(options);
        context.Response.RegisterForDispose(db);
        return db;
    }
}
