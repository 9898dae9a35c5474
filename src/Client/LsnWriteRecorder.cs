using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OrleansLsn.Client;

/// <summary>
/// The latest write a unit of work (a web request, a message, a job: one DI scope) committed: EF Core contexts with
/// <c>UseLsnCapture</c> (OrleansLsn.EntityFrameworkCore) record theirs here, plain Npgsql code records what
/// <see cref="PrimaryLsn.CommitAsync"/> returns. Thread-safe. Registered once per scope by
/// <see cref="LsnWriteRecorderServiceCollectionExtensions.AddLsnWriteRecorder"/>.
/// </summary>
public sealed class LsnWriteRecorder
{
    private readonly Lock _lock = new();
    private CommittedWrite? _last;
    private long _count;

    /// <summary>The latest write recorded (the highest LSN on the latest timeline of its primary), or <c>null</c>.</summary>
    public CommittedWrite? LastWrite
    {
        get
        {
            lock (_lock)
            {
                return _last;
            }
        }
    }

    /// <summary>How many writes were recorded (each commit or autocommit write counts once).</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>
    /// Records <paramref name="write"/>: kept if it is later than the write held, that is on another primary (a new
    /// database cluster wins: the old one's positions mean nothing there), on a later timeline of the same primary, or
    /// further on the same timeline.
    /// </summary>
    public void Record(CommittedWrite write)
    {
        Interlocked.Increment(ref _count);
        lock (_lock)
        {
            if (_last is not { } last || CommittedWrite.Supersedes(write.Lsn, write.Primary, last.Lsn, last.Primary))
            {
                _last = write;
            }
        }
    }
}

/// <summary>Registers <see cref="LsnWriteRecorder"/>.</summary>
public static class LsnWriteRecorderServiceCollectionExtensions
{
    /// <summary>Registers <see cref="LsnWriteRecorder"/> once per scope (a web request, a message, a job).</summary>
    public static IServiceCollection AddLsnWriteRecorder(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddScoped<LsnWriteRecorder>();
        return services;
    }
}
