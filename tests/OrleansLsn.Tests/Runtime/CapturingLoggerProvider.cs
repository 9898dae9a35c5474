using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OrleansLsn.Tests.GrainRuntime;

/// <summary>Keeps warning-and-above log lines in memory so tests can check that the silo logged what it refused.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    private static readonly ConcurrentQueue<string> All = new();

    public static IReadOnlyList<string> For(object _) => All.ToArray();

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                All.Enqueue($"{logLevel} {category} [{eventId.Id}] {formatter(state, exception)}");
            }
        }
    }
}
