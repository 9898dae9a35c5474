using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OrleansLsn.Bench.Runtime;

/// <summary>
/// Keeps the runtime's warnings and errors (silo and client) out of the console and in the report: how many, and the
/// first few messages, so a problem under load is visible next to the figures.
/// </summary>
internal sealed class LogCapture : ILoggerProvider
{
    private const int KeptMessages = 5;
    private readonly ConcurrentQueue<string> _first = new();
    private int _count;

    /// <summary>Warnings and errors logged so far.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The first few of them, formatted.</summary>
    public IReadOnlyCollection<string> First => _first;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Add(string entry)
    {
        if (Interlocked.Increment(ref _count) <= KeptMessages)
        {
            _first.Enqueue(entry);
        }
    }

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                string message = formatter(state, exception);
                owner.Add($"{logLevel} {category}: {message}{(exception is null ? string.Empty : $" ({exception.GetType().Name}: {exception.Message})")}");
            }
        }
    }
}
