using System.Globalization;

namespace OrleansLsn.Bench.Replication;

/// <summary>This process's resident set size, as the kernel reports it (<c>VmRSS</c> in <c>/proc/self/status</c>).</summary>
internal static class ProcessMemory
{
    private const string StatusFile = "/proc/self/status";

    /// <exception cref="InvalidOperationException">There is no <c>VmRSS</c> line (not Linux).</exception>
    public static long ReadRssBytes()
    {
        foreach (string line in File.ReadLines(StatusFile))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                // "VmRSS:	  123456 kB"
                string[] parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException($"No VmRSS line in {StatusFile}; RSS can only be measured on Linux.");
    }

    /// <summary>A full, compacting, blocking collection, finalizers included, so that a baseline holds no garbage.</summary>
    public static void CollectFully()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }
}
