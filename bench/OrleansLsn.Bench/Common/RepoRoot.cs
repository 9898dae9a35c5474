namespace OrleansLsn.Bench.Common;

/// <summary>Finds the repository root: the nearest folder holding <c>OrleansLsn.sln</c>.</summary>
internal static class RepoRoot
{
    private const string SolutionFile = "OrleansLsn.sln";

    /// <summary>The repository root, searched upwards from the current directory, then from the program's folder.</summary>
    /// <exception cref="InvalidOperationException">No folder above either start holds the solution file.</exception>
    public static string Find()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, SolutionFile)))
                {
                    return dir.FullName;
                }
            }
        }

        throw new InvalidOperationException(
            $"Could not find the repository root (a folder with {SolutionFile}) above the current directory or the program; pass --output.");
    }

    /// <summary><c>bench/results</c> under the repository root.</summary>
    public static string DefaultResultsDirectory() => Path.Combine(Find(), "bench", "results");
}
