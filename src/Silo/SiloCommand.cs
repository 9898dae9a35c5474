using System.CommandLine;
using OrleansLsn.Silo.Hosting;

namespace OrleansLsn.Silo;

/// <summary><c>silo</c>: runs one silo; every other argument is configuration (<c>--OrleansLsn:Region=eu-west</c>).</summary>
internal static class SiloCommand
{
    internal static Command Create()
    {
        var command = new Command(
            "silo",
            "Run one OrleansLsn silo until SIGTERM or Ctrl-C. Configuration: appsettings.json, OrleansLsn__* environment variables, " +
            "and --OrleansLsn:Key=value arguments (for example --OrleansLsn:Region=eu-west). Every problem is reported together and the " +
            "process exits with 2 before Orleans starts.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction((ParseResult result, CancellationToken cancellationToken) =>
            SiloProgram.RunAsync([.. result.UnmatchedTokens], cancellationToken));
        return command;
    }
}
