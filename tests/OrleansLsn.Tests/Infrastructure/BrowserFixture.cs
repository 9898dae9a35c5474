using Microsoft.Playwright;
using Xunit;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// One headless Chromium for the tests of <see cref="BrowserCollection"/>, driven by Playwright. The browser is the
/// machine's own (Debian's <c>chromium</c>), launched by its path: Playwright's browser downloads are never used, so no
/// <c>playwright install</c> is needed. The executable is <c>ORLEANSLSN_CHROMIUM</c> (a path, or a name looked up on
/// <c>PATH</c>), else the first of <c>chromium</c> and <c>chromium-browser</c> on <c>PATH</c>. None found, or one
/// that does not start, fails every test of the collection with the reason (never a skip). Chromium's sandbox is off
/// when the tests run as root (it refuses to start there otherwise), on for any other user. Each test takes a context
/// of its own (<see cref="NewContextAsync"/>: its own cookies and storage) and disposes it.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumEnvironmentVariable = "ORLEANSLSN_CHROMIUM";

    /// <summary>The names looked up on <c>PATH</c> when <see cref="ChromiumEnvironmentVariable"/> is not set.</summary>
    public static readonly string[] ChromiumNames = ["chromium", "chromium-browser"];

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    /// <summary>The Chromium executable the fixture launched.</summary>
    public string ExecutablePath { get; private set; } = "";

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("The browser did not start.");

    public async ValueTask InitializeAsync()
    {
        ExecutablePath = FindChromium(Environment.GetEnvironmentVariable(ChromiumEnvironmentVariable), Environment.GetEnvironmentVariable("PATH"));
        bool root = Environment.IsPrivilegedProcess;
        var started = System.Diagnostics.Stopwatch.StartNew();
        _playwright = await Playwright.CreateAsync();
        try
        {
            _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                ChromiumSandbox = !root,
                Args = root ? ["--no-sandbox"] : [],
                Timeout = 60_000,
            });
        }
        catch (PlaywrightException e)
        {
            throw new InvalidOperationException(
                $"BrowserFixture: Chromium at {ExecutablePath} did not start{(root ? " (as root, without its sandbox)" : "")}: {e.Message}", e);
        }

        TestContext.Current.SendDiagnosticMessage($"BrowserFixture: {ExecutablePath}, Chromium {_browser.Version}{(root ? ", no sandbox (root)" : "")}, started in {started.Elapsed.TotalSeconds:0.00} s");
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }

    /// <summary>A fresh browser context: no cookies, no storage, shared with no other test.</summary>
    public Task<IBrowserContext> NewContextAsync() => Browser.NewContextAsync();

    /// <summary>
    /// The Chromium to launch: <paramref name="configured"/> (the variable's value: a path, or a name looked up on
    /// <paramref name="path"/>), else the first of <see cref="ChromiumNames"/> on <paramref name="path"/>. Throws with
    /// what was looked for and how to fix it when there is none.
    /// </summary>
    public static string FindChromium(string? configured, string? path)
    {
        string[] folders = (path ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            string? found = configured.Contains('/', StringComparison.Ordinal)
                ? (IsExecutable(configured) ? Path.GetFullPath(configured) : null)
                : OnPath(configured, folders);
            return found ?? throw new InvalidOperationException(
                $"BrowserFixture: {ChromiumEnvironmentVariable}={configured} is not an executable file{(configured.Contains('/', StringComparison.Ordinal) ? "" : " on PATH")}. " +
                $"Point it at a Chromium executable, or unset it to use {string.Join(" or ", ChromiumNames)} from PATH.");
        }

        foreach (string name in ChromiumNames)
        {
            if (OnPath(name, folders) is { } found)
            {
                return found;
            }
        }

        throw new InvalidOperationException(
            $"BrowserFixture: no Chromium found: neither {string.Join(" nor ", ChromiumNames)} is on PATH and {ChromiumEnvironmentVariable} is not set. " +
            $"Install it (Debian: apt-get install chromium; .ci/run does) or set {ChromiumEnvironmentVariable} to its executable.");
    }

    private static string? OnPath(string name, string[] folders) =>
        folders.Select(folder => Path.Combine(folder, name)).FirstOrDefault(IsExecutable);

    private static bool IsExecutable(string file) =>
        File.Exists(file) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(file) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0);
}

/// <summary>The tests that drive the shared <see cref="BrowserFixture"/>; each takes a browser context of its own.</summary>
[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "Browser";
}
