namespace OrleansLsn.Bench.Replication;

/// <summary>Counts server log lines written after a point, e.g. walsender timeouts of one application.</summary>
internal sealed class ServerLogCursor
{
    /// <summary>What PostgreSQL logs when <c>wal_sender_timeout</c> cuts a connection.</summary>
    public const string WalSenderTimeoutMessage = "terminating walsender process due to replication timeout";

    private readonly string _path;
    private readonly long _offset;

    private ServerLogCursor(string path, long offset)
    {
        _path = path;
        _offset = offset;
    }

    /// <summary>A cursor at the log's current end, or <see langword="null"/> when there is no log to read.</summary>
    public static ServerLogCursor? AtEnd(string? path) => path is null ? null : new ServerLogCursor(path, new FileInfo(path).Length);

    /// <summary>
    /// Lines written since the cursor was taken that contain <paramref name="message"/> and <paramref name="applicationName"/>
    /// (the log line prefix carries the application name).
    /// </summary>
    public int Count(string message, string applicationName) => ReadNewLines().Count(line =>
        line.Contains(message, StringComparison.Ordinal) && line.Contains(applicationName, StringComparison.Ordinal));

    private List<string> ReadNewLines()
    {
        // The server keeps writing the file: share it, and read only what was there when we looked.
        using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        stream.Seek(_offset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }
}
