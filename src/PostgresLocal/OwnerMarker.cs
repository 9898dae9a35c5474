using System.Globalization;

namespace OrleansLsn.PostgresLocal;

/// <summary>
/// Identifies the process that owns a cluster folder: its PID plus its start time (field 22 of <c>/proc/PID/stat</c>),
/// so a recycled PID is not mistaken for the owner.
/// </summary>
internal readonly record struct OwnerMarker(int ProcessId, long StartTicks)
{
    internal const string FileName = "owner";

    internal static OwnerMarker Current => new(Environment.ProcessId, ReadStartTicks(Environment.ProcessId) ?? 0);

    internal static OwnerMarker? TryRead(string clusterDirectory)
    {
        try
        {
            string[] parts = File.ReadAllText(Path.Combine(clusterDirectory, FileName)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 &&
                int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid) &&
                long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long start))
            {
                return new OwnerMarker(pid, start);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    internal void Write(string clusterDirectory) =>
        File.WriteAllText(Path.Combine(clusterDirectory, FileName), string.Create(CultureInfo.InvariantCulture, $"{ProcessId} {StartTicks}"));

    internal bool IsAlive() => ReadStartTicks(ProcessId) is long ticks && ticks == StartTicks;

    private static long? ReadStartTicks(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may contain spaces; fields after it are plain.
            int close = stat.LastIndexOf(')');
            string[] rest = stat[(close + 2)..].Split(' ');
            // rest[0] is field 3 (state), so field 22 (starttime) is rest[19].
            return long.Parse(rest[19], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
