using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OrleansLsn.Tests.Membership;

/// <summary>Keeps every log line (event id, level, formatted message) for assertions.</summary>
internal sealed class RecordingLogger : ILogger
{
    private readonly ConcurrentQueue<(EventId EventId, LogLevel Level, string Message)> _entries = new();

    public IReadOnlyList<(EventId EventId, LogLevel Level, string Message)> Entries => [.. _entries];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _entries.Enqueue((eventId, logLevel, formatter(state, exception)));

    public int Count(int eventId) => Entries.Count(e => e.EventId.Id == eventId);
}
