using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>A logger provider that keeps the text of every warning (or worse) logged with one of <paramref name="eventIds"/>.</summary>
public sealed class WarningCollector(ConcurrentQueue<string> warnings, params int[] eventIds) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(warnings, eventIds);

    public void Dispose()
    {
    }

    private sealed class Logger(ConcurrentQueue<string> warnings, int[] eventIds) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning && eventIds.Contains(eventId.Id))
            {
                warnings.Enqueue(formatter(state, exception));
            }
        }
    }
}
