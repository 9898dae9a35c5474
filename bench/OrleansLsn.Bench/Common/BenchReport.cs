using System.Globalization;
using System.Text.Json.Nodes;

namespace OrleansLsn.Bench.Common;

/// <summary>Everything one benchmark command measured: JSON keys, table rows, notes and failures.</summary>
internal sealed class BenchReport
{
    private readonly List<ResultRow> _rows = [];
    private readonly List<string> _notes = [];
    private readonly List<string> _errors = [];

    public BenchReport(string area, bool quick)
    {
        Area = area;
        Quick = quick;
    }

    public string Area { get; }

    public bool Quick { get; }

    /// <summary>The figures, in insertion order; written at the top level of the JSON.</summary>
    public JsonObject Values { get; } = [];

    public JsonObject Machine { get; set; } = [];

    /// <summary>
    /// The primary's <c>server_version</c> (<c>machine.postgresql_primary</c>, set by every command that runs on
    /// PostgreSQL), or <see langword="null"/>; shown in the table's title and written as <c>postgresql_version</c>.
    /// </summary>
    public string? ServerVersion => Machine["postgresql_primary"]?.GetValue<string>();

    public IReadOnlyList<ResultRow> Rows => _rows;

    public IReadOnlyList<string> Notes => _notes;

    public IReadOnlyList<string> Errors => _errors;

    public bool Failed => _errors.Count > 0;

    /// <summary>Sets a number, rounded to 3 decimals (ms figures to the microsecond).</summary>
    public void Set(string key, double value)
    {
        if (!double.IsFinite(value))
        {
            throw new InvalidOperationException($"The figure {key} is not a finite number ({value}): the scenario did not measure.");
        }

        Values[key] = Math.Round(value, 3);
    }

    /// <summary>Sets an object of numbers keyed by <paramref name="values"/>' keys (e.g. waiter counts).</summary>
    public void Set(string key, IEnumerable<KeyValuePair<long, double>> values)
    {
        var node = new JsonObject();
        foreach ((long k, double v) in values)
        {
            node[k.ToString(CultureInfo.InvariantCulture)] = Math.Round(v, 3);
        }

        Values[key] = node;
    }

    public void SetText(string key, string value) => Values[key] = value;

    public void AddRow(ResultRow row) => _rows.Add(row);

    public void Note(string note) => _notes.Add(note);

    public void Fail(string scenario, Exception exception) => _errors.Add($"{scenario}: {exception.GetType().Name}: {exception.Message}");
}
