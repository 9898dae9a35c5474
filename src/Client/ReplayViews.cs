using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OrleansLsn.Client;

/// <summary>
/// The replay views of one client (one <see cref="ReplayView"/> per region, started on first use, shared by every
/// session of the client, retired after <see cref="ReplayViewOptions.IdleLifetime"/> without use). Registered as a
/// singleton by <see cref="OrleansLsnClientBuilderExtensions.UseOrleansLsnClient(IClientBuilder)"/>; sessions created
/// without it use <see cref="For"/>, one set per grain factory. Thread-safe.
/// </summary>
public sealed class ReplayViews : IAsyncDisposable
{
    private static readonly ConditionalWeakTable<IGrainFactory, ReplayViews> Shared = new();

    private readonly IGrainFactory _grains;
    private readonly ReplayViewOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ConcurrentDictionary<string, ReplayView> _views = new(StringComparer.Ordinal);
    private int _disposed;

    /// <summary>Creates the views of the client behind <paramref name="grains"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="options"/> is not valid (every problem named).</exception>
    public ReplayViews(IGrainFactory grains, ReplayViewOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        options ??= new ReplayViewOptions();
        var result = new ReplayViewOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new ArgumentException("Invalid replay view options: " + string.Join(" ", result.Failures), nameof(options));
        }

        _grains = grains;
        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
    }

    /// <summary>The views of <paramref name="grains"/> shared by every session created over it without views of its own (default options).</summary>
    public static ReplayViews For(IGrainFactory grains)
    {
        ArgumentNullException.ThrowIfNull(grains);
        return Shared.GetValue(grains, static g => new ReplayViews(g));
    }

    /// <summary>The regions with a view now.</summary>
    public IReadOnlyCollection<string> Regions => [.. _views.Keys];

    /// <summary>The view of <paramref name="region"/>, started if there is none.</summary>
    /// <exception cref="ArgumentException">The region is empty.</exception>
    /// <exception cref="ObjectDisposedException">The views were disposed (the client stopped).</exception>
    public ReplayView Get(string region)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(region);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_views.TryGetValue(region, out ReplayView? view))
        {
            return view;
        }

        lock (_views)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return _views.GetOrAdd(region, r => new ReplayView(_grains, r, this, _options, _loggerFactory.CreateLogger<ReplayView>()));
        }
    }

    /// <summary>Waits through the view of <paramref name="region"/>; see <see cref="ReplayView.WaitAsync"/>. A view retired meanwhile is replaced.</summary>
    public async ValueTask<LsnWaitResult> WaitAsync(string region, Lsn lsn, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            ReplayView view = Get(region);
            try
            {
                return await view.WaitAsync(lsn, timeout, cancellationToken).ConfigureAwait(false);
            }
            catch (ObjectDisposedException) when (Volatile.Read(ref _disposed) == 0)
            {
                Remove(view);
            }
        }
    }

    /// <summary>Stops every view: registrations withdrawn (best effort), pending waits time out.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        ReplayView[] views;
        lock (_views)
        {
            views = [.. _views.Values];
            _views.Clear();
        }

        await Task.WhenAll(views.Select(v => v.StopAsync())).ConfigureAwait(false);
    }

    internal void Remove(ReplayView view) => _views.TryRemove(new KeyValuePair<string, ReplayView>(view.Region, view));
}
