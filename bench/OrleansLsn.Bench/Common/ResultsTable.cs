using Spectre.Console;
using Spectre.Console.Rendering;

namespace OrleansLsn.Bench.Common;

/// <summary>Prints a report's rows, notes and failures with Spectre.Console.</summary>
internal static class ResultsTable
{
    public static void Render(BenchReport report)
    {
        var table = new Table()
            .Title($"{report.Area}{(report.Quick ? " (--quick)" : string.Empty)}{(report.ServerVersion is { } version ? $" on PostgreSQL {version}" : string.Empty)}")
            .AddColumn("Metric")
            .AddColumn(new TableColumn("Ours").RightAligned())
            .AddColumn(new TableColumn("Anchor / limit").RightAligned())
            .AddColumn(new TableColumn("Ratio").RightAligned())
            .AddColumn("Goal")
            .AddColumn("Met");
        foreach (ResultRow row in report.Rows)
        {
            IRenderable met = row.Met switch
            {
                true => new Markup("[green]yes[/]"),
                false => new Markup("[red]NO[/]"),
                null => new Markup("[grey]info[/]"),
            };
            table.AddRow(new Text(row.Metric), new Text(row.Ours), new Text(row.Anchor), new Text(row.Ratio), new Text(row.Goal), met);
        }

        AnsiConsole.Write(table);
        foreach (string note in report.Notes)
        {
            AnsiConsole.Write(new Text("• " + note + Environment.NewLine, new Style(Color.Grey)));
        }

        foreach (string error in report.Errors)
        {
            AnsiConsole.Write(new Text("FAILED " + error + Environment.NewLine, new Style(Color.Red)));
        }
    }
}
