using System.Text.RegularExpressions;
using Xunit;

namespace OrleansLsn.Tests.Docs;

/// <summary>
/// docs/first-client.md shows its project file and program as code blocks, and samples/FirstClient/run.sh builds and
/// runs those files in CI: the two must be the same text, so what the page shows is what CI proved to work.
/// </summary>
public sealed class FirstClientPageTests
{
    [Theory]
    [InlineData("FirstClient.csproj", "xml")]
    [InlineData("Program.cs", "csharp")]
    public void ThePagesCodeBlock_IsTheSampleFile(string file, string language)
    {
        string root = DocumentationLinkTests.FindRepositoryRoot();
        string page = File.ReadAllText(Path.Combine(root, "docs", "first-client.md"));
        string sample = Normalize(File.ReadAllText(Path.Combine(root, "samples", "FirstClient", file)));

        // The block right after the line that names the file (`FirstClient.csproj`:).
        Match block = Regex.Match(page, $"`{Regex.Escape(file)}`:\\s*\\n+```{language}\\n(?<code>.*?)\\n```", RegexOptions.Singleline);
        Assert.True(block.Success, $"docs/first-client.md has no ```{language} block after `{file}`:");
        Assert.Equal(sample, Normalize(block.Groups["code"].Value));
    }

    private static string Normalize(string text) => string.Join('\n', text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd().Split('\n').Select(l => l.TrimEnd()));
}
