namespace OrleansLsn.Tests.Infrastructure;

/// <summary>A private temporary folder (mode 700) for secret files of one test, deleted on dispose.</summary>
public sealed class SecretFolder : IDisposable
{
    public SecretFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "orleanslsn-secrets-" + Guid.NewGuid().ToString("N")[..8]);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Path);
        }
        else
        {
            Directory.CreateDirectory(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    public string Path { get; }

    /// <summary>Writes <paramref name="content"/> as it is (mode 600) and returns the file's path.</summary>
    public string Write(string name, string content)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllText(path, content);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
