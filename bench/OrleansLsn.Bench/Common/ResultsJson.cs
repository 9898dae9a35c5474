using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansLsn.Bench.Common;

/// <summary>Writes a report as <c>&lt;output&gt;/&lt;area&gt;.json</c> with System.Text.Json.</summary>
internal static class ResultsJson
{
    private static readonly JsonSerializerOptions Indented = new()
    {
        WriteIndented = true,

        // A file for people to read: keep ≤, × and + as they are.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes the file (replacing it) and returns its path.</summary>
    public static async Task<string> WriteAsync(BenchReport report, string directory, CancellationToken cancellationToken)
    {
        var root = new JsonObject
        {
            ["benchmark"] = report.Area,
            ["timestamp"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["quick"] = report.Quick,
            ["postgresql_version"] = report.ServerVersion,
            ["machine"] = report.Machine.DeepClone(),
        };
        foreach ((string key, JsonNode? value) in report.Values)
        {
            root[key] = value?.DeepClone();
        }

        var goals = new JsonObject();
        foreach (ResultRow row in report.Rows)
        {
            if (row is { GoalKey: { } key, Met: { } met })
            {
                goals[key] = new JsonObject { ["goal"] = row.Goal, ["ours"] = row.Ours, ["anchor"] = row.Anchor, ["met"] = met };
            }
        }

        root["goals"] = goals;
        root["notes"] = new JsonArray([.. report.Notes.Select(n => (JsonNode?)JsonValue.Create(n))]);

        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, report.Area + ".json");
        string temporary = path + ".tmp";
        await File.WriteAllTextAsync(temporary, root.ToJsonString(Indented) + "\n", cancellationToken).ConfigureAwait(false);
        File.Move(temporary, path, overwrite: true);
        return path;
    }
}
