using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Fixture;

/// <summary>Finding Chromium for <see cref="BrowserFixture"/>: the variable first, else PATH, else a clear failure.</summary>
public sealed class BrowserFixtureTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("orleanslsn-browser-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void FindChromium_OnPath_TakesChromiumBeforeChromiumBrowser_AndSkipsFilesThatDoNotRun()
    {
        string first = Path.Combine(_folder, "a");
        string second = Path.Combine(_folder, "b");
        Directory.CreateDirectory(first);
        Directory.CreateDirectory(second);
        File.WriteAllText(Path.Combine(first, "chromium"), "not executable");
        string browser = Executable(Path.Combine(first, "chromium-browser"));
        string chromium = Executable(Path.Combine(second, "chromium"));

        Assert.Equal(chromium, BrowserFixture.FindChromium(null, $"{first}:{second}"));
        File.Delete(chromium);
        Assert.Equal(browser, BrowserFixture.FindChromium("", $"{first}:{second}"));
    }

    [Fact]
    public void FindChromium_TheVariable_WinsOverPath_AsAPathOrAName()
    {
        Executable(Path.Combine(_folder, "chromium"));
        string mine = Executable(Path.Combine(_folder, "my-chrome"));

        Assert.Equal(mine, BrowserFixture.FindChromium(mine, _folder));
        Assert.Equal(mine, BrowserFixture.FindChromium("my-chrome", _folder));
    }

    [Fact]
    public void FindChromium_TheVariableNamesNothing_FailsNamingTheVariable_InsteadOfFallingBack()
    {
        Executable(Path.Combine(_folder, "chromium"));

        var ex = Assert.Throws<InvalidOperationException>(() => BrowserFixture.FindChromium(Path.Combine(_folder, "missing"), _folder));
        Assert.Contains($"{BrowserFixture.ChromiumEnvironmentVariable}={Path.Combine(_folder, "missing")} is not an executable file", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FindChromium_NoneAnywhere_FailsSayingHowToInstallOrPointAtOne()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => BrowserFixture.FindChromium(null, _folder));
        Assert.Contains("no Chromium found", ex.Message, StringComparison.Ordinal);
        Assert.Contains("apt-get install chromium", ex.Message, StringComparison.Ordinal);
        Assert.Contains(BrowserFixture.ChromiumEnvironmentVariable, ex.Message, StringComparison.Ordinal);
    }

    private static string Executable(string file)
    {
        File.WriteAllText(file, "#!/bin/sh\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return file;
    }
}
