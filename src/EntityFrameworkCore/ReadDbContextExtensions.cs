using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using OrleansLsn.Client;

namespace OrleansLsn.EntityFrameworkCore;

/// <summary>
/// The read <c>DbContext</c>: a context of the application's own type over the data source its scope's
/// <see cref="ReadDecision"/> chose (the region's replica, or the primary), injected as a keyed service:
/// <c>[FromKeyedServices(ReadDbContext.Key)] ShopDb reads</c>.
/// </summary>
public static class ReadDbContext
{
    /// <summary>The service key of read contexts.</summary>
    public const string Key = "orleanslsn-read";

    /// <summary>
    /// Registers <typeparamref name="TContext"/> under <see cref="Key"/>, once per scope, over the data source of the
    /// scope's <see cref="ReadDecision"/>; <paramref name="configure"/> sets the provider on it, for example
    /// <c>(o, source) =&gt; o.UseNpgsql(source).UseQueryTrackingBehavior(QueryTrackingBehavior.NoTracking)</c>. It runs
    /// once per data source (the options are kept), so it must not capture anything of a scope.
    /// </summary>
    /// <remarks>Resolving it in a scope without a decision throws <see cref="InvalidOperationException"/> (see <see cref="ReadScope.Decision"/>).</remarks>
    public static IServiceCollection AddReadDbContext<TContext>(this IServiceCollection services, Action<DbContextOptionsBuilder<TContext>, NpgsqlDataSource> configure)
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.TryAddSingleton(new ReadContextOptions<TContext>(configure));
        services.TryAddKeyedScoped<TContext>(Key, static (sp, _) =>
        {
            ReadDecision decision = sp.GetRequiredService<ReadScope>().Decision;
            DbContextOptions<TContext> options = sp.GetRequiredService<ReadContextOptions<TContext>>().For(decision.DataSource);
            return ActivatorUtilities.CreateInstance<TContext>(sp, options);
        });
        return services;
    }

    private sealed class ReadContextOptions<TContext>(Action<DbContextOptionsBuilder<TContext>, NpgsqlDataSource> configure)
        where TContext : DbContext
    {
        private readonly ConcurrentDictionary<NpgsqlDataSource, DbContextOptions<TContext>> _bySource = new();

        public DbContextOptions<TContext> For(NpgsqlDataSource source) => _bySource.GetOrAdd(source, s =>
        {
            var builder = new DbContextOptionsBuilder<TContext>();
            configure(builder, s);
            return builder.Options;
        });
    }
}
