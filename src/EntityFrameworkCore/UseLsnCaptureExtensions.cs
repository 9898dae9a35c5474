using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OrleansLsn.Client;

namespace OrleansLsn.EntityFrameworkCore;

/// <summary>Records the LSN of every write an EF Core context commits: <c>options.UseNpgsql(...).UseLsnCapture(sp)</c>.</summary>
public static class UseLsnCaptureExtensions
{
    /// <summary>
    /// Records every write this context commits in <paramref name="recorder"/> (see <see cref="LsnWriteRecorder"/>). Call it
    /// where the options are built for each context (as <c>AddDbContext</c>'s options action does), so that each context
    /// gets an interceptor of its own.
    /// </summary>
    public static DbContextOptionsBuilder UseLsnCapture(this DbContextOptionsBuilder builder, LsnWriteRecorder recorder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(recorder);
        return builder.AddInterceptors(new LsnCaptureInterceptor(recorder));
    }

    /// <summary>
    /// Records every write this context commits in the scope's <see cref="LsnWriteRecorder"/> (registered by
    /// <see cref="LsnWriteRecorderServiceCollectionExtensions.AddLsnWriteRecorder"/>): <c>services.AddDbContext&lt;ShopDb&gt;((sp, o) =&gt; o.UseNpgsql(cs).UseLsnCapture(sp))</c>.
    /// </summary>
    public static DbContextOptionsBuilder UseLsnCapture(this DbContextOptionsBuilder builder, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        LsnWriteRecorder recorder = services.GetService<LsnWriteRecorder>()
            ?? throw new InvalidOperationException("No LsnWriteRecorder is registered: call services.AddLsnWriteRecorder() before UseLsnCapture(serviceProvider).");
        return builder.UseLsnCapture(recorder);
    }

    /// <inheritdoc cref="UseLsnCapture(DbContextOptionsBuilder, LsnWriteRecorder)"/>
    public static DbContextOptionsBuilder<TContext> UseLsnCapture<TContext>(this DbContextOptionsBuilder<TContext> builder, LsnWriteRecorder recorder)
        where TContext : DbContext =>
        (DbContextOptionsBuilder<TContext>)UseLsnCapture((DbContextOptionsBuilder)builder, recorder);

    /// <inheritdoc cref="UseLsnCapture(DbContextOptionsBuilder, IServiceProvider)"/>
    public static DbContextOptionsBuilder<TContext> UseLsnCapture<TContext>(this DbContextOptionsBuilder<TContext> builder, IServiceProvider services)
        where TContext : DbContext =>
        (DbContextOptionsBuilder<TContext>)UseLsnCapture((DbContextOptionsBuilder)builder, services);
}
