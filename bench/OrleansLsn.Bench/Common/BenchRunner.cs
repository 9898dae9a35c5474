using Spectre.Console;

namespace OrleansLsn.Bench.Common;

/// <summary>What every benchmark command does around its scenarios: error reporting, the scenario loop, the table and the JSON.</summary>
internal static class BenchRunner
{
    /// <summary>One scenario of an area, run against that area's context.</summary>
    internal delegate Task Scenario<in TContext>(TContext context, BenchReport report, CancellationToken cancellationToken);

    /// <summary>Runs a command body: cancellation exits with 130, a set-up failure is printed and exits with 1.</summary>
    internal static async Task<int> InvokeAsync(Func<Task<int>> run, CancellationToken cancellationToken)
    {
        try
        {
            return await run().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            AnsiConsole.MarkupLine("[yellow]Cancelled.[/]");
            return 130;
        }
#pragma warning disable CA1031 // Setting up the servers failed: report it and exit non-zero.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            AnsiConsole.MarkupLine("[red]The benchmark could not run:[/]");
            AnsiConsole.WriteException(ex, ExceptionFormats.ShortenEverything);
            return 1;
        }
    }

    /// <summary>Prints an invalid option and returns the exit code for it (2).</summary>
    internal static int InvalidOption(Exception ex)
    {
        AnsiConsole.MarkupLine($"[red]{Markup.Escape(ex.Message)}[/]");
        return 2;
    }

    /// <summary>Runs every scenario; a failing one is recorded in the report and the others still run.</summary>
    internal static async Task RunScenariosAsync<TContext>(
        IEnumerable<(string Name, Scenario<TContext> Run)> scenarios, TContext context, BenchReport report, CancellationToken cancellationToken)
    {
        foreach ((string name, Scenario<TContext> run) in scenarios)
        {
            AnsiConsole.MarkupLine($"[grey]Running {name}…[/]");
            try
            {
                await run(context, report, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
#pragma warning disable CA1031 // Any scenario failure is reported, and the others still run.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                report.Fail(name, ex);
                AnsiConsole.WriteException(ex, ExceptionFormats.ShortenEverything);
            }
        }
    }

    /// <summary>Prints the table, and writes the JSON unless a scenario failed (then returns 1).</summary>
    internal static async Task<int> FinishAsync(BenchReport report, string outputDirectory, CancellationToken cancellationToken)
    {
        ResultsTable.Render(report);
        if (report.Failed)
        {
            AnsiConsole.MarkupLine($"[red]{report.Errors.Count} scenario(s) failed; {Markup.Escape(report.Area)}.json was not written.[/]");
            return 1;
        }

        string path = await ResultsJson.WriteAsync(report, outputDirectory, cancellationToken).ConfigureAwait(false);
        AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(path)}[/]");
        return 0;
    }
}
