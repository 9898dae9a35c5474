using System.CommandLine;

namespace OrleansLsn.Bench.Common;

/// <summary>
/// The options every benchmark command takes: <c>--quick</c>, <c>--output</c>, <c>--primary</c> and, for commands that
/// need a hot standby, <c>--standby</c>.
/// </summary>
internal sealed class CommonOptions
{
    private readonly bool _withStandby;

    /// <param name="withStandby">
    /// Whether the command runs on a primary and its hot standby (<c>--primary</c> with <c>--standby</c>), or on a primary
    /// alone (no <c>--standby</c> option).
    /// </param>
    public CommonOptions(bool withStandby = true)
    {
        _withStandby = withStandby;
        Primary = new Option<string?>("--primary")
        {
            Description = withStandby
                ? "Connection string of an existing primary (with --standby). Default: start a throw-away local primary and standby."
                : "Connection string of an existing primary (wal_level=logical). Default: start a throw-away local primary.",
        };
    }

    public Option<bool> Quick { get; } = new("--quick")
    {
        Description = "Shorter run (fewer samples, shorter windows) for smoke testing; the figures are noisier.",
    };

    public Option<string?> Output { get; } = new("--output")
    {
        Description = "Folder for the results JSON. Default: bench/results under the repository root (the folder with OrleansLsn.sln).",
        DefaultValueFactory = _ => null,
    };

    public Option<string?> Primary { get; }

    public Option<string?> Standby { get; } = new("--standby")
    {
        Description = "Connection string of an existing hot standby of --primary.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Quick);
        command.Options.Add(Output);
        command.Options.Add(Primary);
        if (_withStandby)
        {
            command.Options.Add(Standby);
        }
    }

    /// <exception cref="ArgumentException">Only one of --primary and --standby was given.</exception>
    public BenchSettings Read(ParseResult result)
    {
        string? primary = result.GetValue(Primary);
        if (!_withStandby)
        {
            return new BenchSettings(result.GetValue(Quick), ReadOutput(result), string.IsNullOrWhiteSpace(primary) ? null : primary, null);
        }

        string? standby = result.GetValue(Standby);
        if (string.IsNullOrWhiteSpace(primary) != string.IsNullOrWhiteSpace(standby))
        {
            throw new ArgumentException("Give both --primary and --standby, or neither (then a local primary and standby are started).");
        }

        return new BenchSettings(result.GetValue(Quick), ReadOutput(result), primary, standby);
    }

    private string ReadOutput(ParseResult result) =>
        result.GetValue(Output) is { Length: > 0 } given ? Path.GetFullPath(given) : RepoRoot.DefaultResultsDirectory();
}
