using System.CommandLine;

namespace OrleansLsn.Bench.Common;

/// <summary>
/// The options every benchmark command takes: <c>--quick</c>, <c>--output</c> and, for commands that use PostgreSQL,
/// <c>--primary</c> and (for commands that need a hot standby) <c>--standby</c>.
/// </summary>
internal sealed class CommonOptions
{
    private readonly Servers _servers;

    /// <param name="withStandby">
    /// Whether the command runs on a primary and its hot standby (<c>--primary</c> with <c>--standby</c>), or on a primary
    /// alone (no <c>--standby</c> option).
    /// </param>
    public CommonOptions(bool withStandby = true)
        : this(withStandby ? Servers.PrimaryAndStandby : Servers.Primary)
    {
    }

    private CommonOptions(Servers servers)
    {
        _servers = servers;
        Primary = new Option<string?>("--primary")
        {
            Description = servers == Servers.PrimaryAndStandby
                ? "Connection string of an existing primary (with --standby). Default: start a throw-away local primary and standby."
                : "Connection string of an existing primary (wal_level=logical). Default: start a throw-away local primary.",
        };
    }

    private enum Servers
    {
        None,
        Primary,
        PrimaryAndStandby,
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

    /// <summary>The options of a command that uses no PostgreSQL server: only <c>--quick</c> and <c>--output</c>.</summary>
    public static CommonOptions WithoutPostgres() => new(Servers.None);

    public void AddTo(Command command)
    {
        command.Options.Add(Quick);
        command.Options.Add(Output);
        if (_servers != Servers.None)
        {
            command.Options.Add(Primary);
        }

        if (_servers == Servers.PrimaryAndStandby)
        {
            command.Options.Add(Standby);
        }
    }

    /// <exception cref="ArgumentException">Only one of --primary and --standby was given.</exception>
    public BenchSettings Read(ParseResult result)
    {
        if (_servers == Servers.None)
        {
            return new BenchSettings(result.GetValue(Quick), ReadOutput(result), null, null);
        }

        string? primary = result.GetValue(Primary);
        if (_servers == Servers.Primary)
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
