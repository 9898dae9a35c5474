using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace OrleansLsn.Tests.Docs;

/// <summary>
/// The README and the pages under <c>docs/</c>: every relative link reaches a file or folder of the repository, every
/// <c>#anchor</c> a heading (GitHub's slugs), the README stays short and maps every page. Links inside fenced code
/// blocks and inline code are not links; <c>http:</c>, <c>https:</c> and <c>mailto:</c> targets are not checked.
/// </summary>
public sealed partial class DocumentationLinkTests
{
    private const string SolutionFile = "OrleansLsn.sln";
    private const int MaxReadmeLines = 200;
    private const int MinExpectedRelativeLinks = 20;

    private static readonly string[] SkippedSchemes = ["http:", "https:", "mailto:"];

    [Fact]
    public void EveryRelativeLink_ResolvesToAFile()
    {
        MarkdownSet docs = MarkdownSet.FromRepository(FindRepositoryRoot());

        IReadOnlyList<LinkProblem> problems = FindBrokenTargets(docs);

        int relativeLinks = docs.Files.Sum(f => ExtractLinks(f.Path, f.Lines).Count(l => !IsSkipped(l.Target)));
        Assert.True(
            relativeLinks > MinExpectedRelativeLinks,
            $"Only {relativeLinks} relative links found in {docs.Files.Count} files; expected more than {MinExpectedRelativeLinks} (is the scan finding the docs?).");
        Assert.True(problems.Count == 0, Describe("Broken links", docs.Root, problems));
    }

    [Fact]
    public void EveryAnchor_MatchesAHeading()
    {
        MarkdownSet docs = MarkdownSet.FromRepository(FindRepositoryRoot());

        IReadOnlyList<LinkProblem> problems = FindBrokenAnchors(docs);

        int anchors = docs.Files.Sum(f => ExtractLinks(f.Path, f.Lines).Count(l => !IsSkipped(l.Target) && l.Target.Contains('#', StringComparison.Ordinal)));
        Assert.True(anchors > 0, "No #anchor links found at all (is the scan finding the docs?).");
        Assert.True(problems.Count == 0, Describe("Broken anchors", docs.Root, problems));
    }

    [Fact]
    public void Readme_HasAtMost200Lines()
    {
        string readme = Path.Combine(FindRepositoryRoot(), "README.md");

        int lines = File.ReadAllLines(readme).Length;

        Assert.True(lines <= MaxReadmeLines, $"README.md has {lines} lines; at most {MaxReadmeLines} (move details to a page under docs/).");
    }

    [Fact]
    public void EveryDocsPage_IsLinkedFromTheReadme()
    {
        MarkdownSet docs = MarkdownSet.FromRepository(FindRepositoryRoot());
        MarkdownFile readme = docs.Files.Single(f => f.Path == Path.Combine(docs.Root, "README.md"));
        var linked = new HashSet<string>(
            ExtractLinks(readme.Path, readme.Lines)
                .Where(l => !IsSkipped(l.Target))
                .Select(l => ResolvePath(readme.Path, SplitTarget(l.Target).Path, docs.Root)),
            StringComparer.Ordinal);

        string[] pages = docs.Files.Where(f => f.Path != readme.Path).Select(f => f.Path).ToArray();
        string[] unlinked = pages.Where(p => !linked.Contains(p)).Select(p => Path.GetRelativePath(docs.Root, p)).ToArray();

        Assert.NotEmpty(pages);
        Assert.True(unlinked.Length == 0, "Pages under docs/ that README.md does not link to (add them to its map): " + string.Join(", ", unlinked));
    }

    [Fact]
    public void Checker_ReportsABrokenLinkAndABrokenAnchor_AndIgnoresCode()
    {
        const string root = "/repo";
        string readmePath = Path.Combine(root, "README.md");
        string pagePath = Path.Combine(root, "docs", "page.md");
        var files = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            [readmePath] =
            [
                "# Sample",
                "A [good link](docs/page.md#real-heading) and [a folder](docs).",
                "A [missing page](docs/missing.md) here.",
                "A [bad anchor](docs/page.md#no-such-heading) here.",
                "Inline code is no link: `[in code](nowhere.md)`.",
                "```markdown",
                "[fenced](nowhere-either.md)",
                "```",
                "[external](https://example.com/nowhere.md) and [mail](mailto:someone@example.com)",
                "[self](#sample) and [self, broken](#nope)",
                "",
                "[ref]: docs/also-missing.md",
            ],
            [pagePath] = ["# Real heading", "Back to [the sample](../README.md#sample)."],
        };
        var docs = new MarkdownSet(
            root,
            files.Select(f => new MarkdownFile(f.Key, f.Value)).ToArray(),
            path => files.ContainsKey(path) || path == Path.Combine(root, "docs"));

        IReadOnlyList<LinkProblem> brokenTargets = FindBrokenTargets(docs);
        IReadOnlyList<LinkProblem> brokenAnchors = FindBrokenAnchors(docs);

        Assert.Equal(
            new[] { "README.md:3: docs/missing.md", "README.md:12: docs/also-missing.md" },
            brokenTargets.Select(p => $"{Path.GetRelativePath(root, p.File)}:{p.Line}: {p.Target}"));
        Assert.Equal(
            new[] { "README.md:4: docs/page.md#no-such-heading", "README.md:10: #nope" },
            brokenAnchors.Select(p => $"{Path.GetRelativePath(root, p.File)}:{p.Line}: {p.Target}"));
        Assert.Contains("README.md:3", Describe("Broken links", root, brokenTargets), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Getting started", "getting-started")]
    [InlineData("What `docker-compose.yml` starts", "what-docker-composeyml-starts")]
    [InlineData("CI: `.ci/run`", "ci-cirun")]
    [InlineData("Failover slots (PostgreSQL 17+)", "failover-slots-postgresql-17")]
    [InlineData("An Orleans client from the silos' configuration", "an-orleans-client-from-the-silos-configuration")]
    [InlineData("Überblick & Ärger", "überblick--ärger")]
    [InlineData("snake_case and kebab-case", "snake_case-and-kebab-case")]
    [InlineData("See [the demo](getting-started.md)", "see-the-demo")]
    public void Slug_FollowsGitHubRules(string heading, string expected)
    {
        Assert.Equal(expected, Slug(heading));
    }

    [Fact]
    public void DuplicateHeadings_GetNumberedSlugs()
    {
        string[] lines = ["# Notes", "## Notes", "```", "# Notes", "```", "### Notes", "## Other"];

        IReadOnlySet<string> anchors = HeadingAnchors(lines);

        Assert.Equal(new[] { "notes", "notes-1", "notes-2", "other" }, anchors.Order(StringComparer.Ordinal));
    }

    internal static string FindRepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, SolutionFile)))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No folder above '{AppContext.BaseDirectory}' holds {SolutionFile}.");
    }

    private static IReadOnlyList<LinkProblem> FindBrokenTargets(MarkdownSet docs)
    {
        var problems = new List<LinkProblem>();
        foreach (MarkdownFile file in docs.Files)
        {
            foreach (MarkdownLink link in ExtractLinks(file.Path, file.Lines))
            {
                if (IsSkipped(link.Target))
                {
                    continue;
                }

                string path = SplitTarget(link.Target).Path;
                if (path.Length == 0)
                {
                    continue;
                }

                string resolved = ResolvePath(file.Path, path, docs.Root);
                if (!IsInside(docs.Root, resolved))
                {
                    problems.Add(new LinkProblem(file.Path, link.Line, link.Target, "points outside the repository"));
                }
                else if (!docs.Exists(resolved))
                {
                    problems.Add(new LinkProblem(file.Path, link.Line, link.Target, "no such file or folder"));
                }
            }
        }

        return problems;
    }

    private static IReadOnlyList<LinkProblem> FindBrokenAnchors(MarkdownSet docs)
    {
        var problems = new List<LinkProblem>();
        var anchorsByFile = new Dictionary<string, IReadOnlySet<string>>(StringComparer.Ordinal);
        foreach (MarkdownFile file in docs.Files)
        {
            foreach (MarkdownLink link in ExtractLinks(file.Path, file.Lines))
            {
                if (IsSkipped(link.Target))
                {
                    continue;
                }

                (string path, string? anchor) = SplitTarget(link.Target);
                if (anchor is null)
                {
                    continue;
                }

                string target = path.Length == 0 ? file.Path : ResolvePath(file.Path, path, docs.Root);
                if (!target.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                IReadOnlyList<string>? lines = docs.Read(target);
                if (lines is null)
                {
                    // A missing file is reported by the link check.
                    continue;
                }

                if (!anchorsByFile.TryGetValue(target, out IReadOnlySet<string>? anchors))
                {
                    anchors = HeadingAnchors(lines);
                    anchorsByFile.Add(target, anchors);
                }

                if (!anchors.Contains(anchor))
                {
                    problems.Add(new LinkProblem(
                        file.Path,
                        link.Line,
                        link.Target,
                        $"no heading '#{anchor}' in {Path.GetRelativePath(docs.Root, target)}"));
                }
            }
        }

        return problems;
    }

    /// <summary>The links of a Markdown file: inline links and images, and reference definitions, outside code.</summary>
    private static IReadOnlyList<MarkdownLink> ExtractLinks(string file, IReadOnlyList<string> lines)
    {
        var links = new List<MarkdownLink>();
        var fence = new FenceTracker();
        for (int i = 0; i < lines.Count; i++)
        {
            if (fence.IsCode(lines[i]))
            {
                continue;
            }

            string text = InlineCodeRegex().Replace(lines[i], " ");
            Match definition = ReferenceDefinitionRegex().Match(text);
            if (definition.Success)
            {
                links.Add(new MarkdownLink(file, i + 1, definition.Groups["target"].Value));
                continue;
            }

            foreach (Match match in InlineLinkRegex().Matches(text))
            {
                links.Add(new MarkdownLink(file, i + 1, match.Groups["target"].Value));
            }
        }

        return links;
    }

    /// <summary>The anchors GitHub gives the headings of a Markdown file, duplicates numbered <c>-1</c>, <c>-2</c>, ...</summary>
    private static IReadOnlySet<string> HeadingAnchors(IReadOnlyList<string> lines)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var fence = new FenceTracker();
        foreach (string line in lines)
        {
            if (fence.IsCode(line))
            {
                continue;
            }

            Match heading = HeadingRegex().Match(line);
            if (!heading.Success)
            {
                continue;
            }

            string slug = Slug(heading.Groups["text"].Value);
            if (seen.TryGetValue(slug, out int count))
            {
                seen[slug] = count + 1;
                anchors.Add(string.Create(CultureInfo.InvariantCulture, $"{slug}-{count}"));
            }
            else
            {
                seen.Add(slug, 1);
                anchors.Add(slug);
            }
        }

        return anchors;
    }

    /// <summary>
    /// GitHub's heading slug: the heading's text (a link's text, not its target), lowercased, with everything but
    /// letters (any script), marks, digits, spaces, hyphens and underscores removed, and each space made a hyphen.
    /// </summary>
    private static string Slug(string heading)
    {
        string text = InlineLinkTextRegex().Replace(heading, "${text}").Trim().ToLowerInvariant();
        var slug = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (c == '-' || IsSlugCharacter(char.GetUnicodeCategory(c)))
            {
                slug.Append(c);
            }
            else if (c == ' ')
            {
                slug.Append('-');
            }
        }

        return slug.ToString();
    }

    // GitHub keeps \p{L}, \p{M}, \p{N} and \p{Pc} (which holds '_').
    private static bool IsSlugCharacter(UnicodeCategory category) => category is
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
        or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
        or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
        or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
        or UnicodeCategory.ConnectorPunctuation;

    private static bool IsSkipped(string target) =>
        SkippedSchemes.Any(s => target.StartsWith(s, StringComparison.OrdinalIgnoreCase));

    private static (string Path, string? Anchor) SplitTarget(string target)
    {
        int hash = target.IndexOf('#', StringComparison.Ordinal);
        return hash < 0
            ? (Uri.UnescapeDataString(target), null)
            : (Uri.UnescapeDataString(target[..hash]), Uri.UnescapeDataString(target[(hash + 1)..]));
    }

    /// <summary>A link's path as a full path: relative to the linking file's folder, or to the root when it starts with <c>/</c>.</summary>
    private static string ResolvePath(string linkingFile, string path, string root)
    {
        string baseFolder = path.StartsWith('/') ? root : Path.GetDirectoryName(linkingFile)!;
        string full = Path.GetFullPath(Path.Combine(baseFolder, path.TrimStart('/')));
        return Path.TrimEndingDirectorySeparator(full);
    }

    private static bool IsInside(string root, string path) =>
        path == root || path.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string Describe(string title, string root, IReadOnlyList<LinkProblem> problems)
    {
        var text = new StringBuilder();
        text.Append(title).Append(" (").Append(problems.Count).AppendLine("):");
        foreach (LinkProblem problem in problems)
        {
            text.Append("  ")
                .Append(Path.GetRelativePath(root, problem.File)).Append(':').Append(problem.Line)
                .Append(": '").Append(problem.Target).Append("': ").AppendLine(problem.Reason);
        }

        return text.ToString();
    }

    // [text](target) or ![alt](target), with an optional "title"; the text may hold one level of brackets.
    [GeneratedRegex("""!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?(?<target>[^\s()<>]+)>?(?:\s+"[^"]*")?\s*\)""")]
    private static partial Regex InlineLinkRegex();

    [GeneratedRegex("""\[(?<text>[^\[\]]*)\]\([^)]*\)""")]
    private static partial Regex InlineLinkTextRegex();

    // [label]: target "optional title", indented at most three spaces.
    [GeneratedRegex("""^ {0,3}\[[^\]]+\]:\s*<?(?<target>[^\s<>]+)>?(?:\s+.*)?$""")]
    private static partial Regex ReferenceDefinitionRegex();

    // A code span: a run of backticks up to the next run of the same length.
    [GeneratedRegex("""(?<!`)(?<ticks>`+)(?!`).*?(?<!`)\k<ticks>(?!`)""")]
    private static partial Regex InlineCodeRegex();

    [GeneratedRegex("""^ {0,3}#{1,6}[ \t]+(?<text>.*?)(?:[ \t]+#+)?[ \t]*$""")]
    private static partial Regex HeadingRegex();

    private sealed record MarkdownLink(string File, int Line, string Target);

    private sealed record LinkProblem(string File, int Line, string Target, string Reason);

    private sealed record MarkdownFile(string Path, IReadOnlyList<string> Lines);

    /// <summary>The files to check and how to see the rest of the repository (the real one, or one in memory).</summary>
    private sealed class MarkdownSet
    {
        private readonly Func<string, bool> _exists;

        public MarkdownSet(string root, IReadOnlyList<MarkdownFile> files, Func<string, bool> exists)
        {
            Root = root;
            Files = files;
            _exists = exists;
        }

        public string Root { get; }

        public IReadOnlyList<MarkdownFile> Files { get; }

        /// <summary>README.md and every .md file under docs/.</summary>
        public static MarkdownSet FromRepository(string root)
        {
            var paths = new List<string> { Path.Combine(root, "README.md") };
            string docs = Path.Combine(root, "docs");
            if (Directory.Exists(docs))
            {
                paths.AddRange(Directory.EnumerateFiles(docs, "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
            }

            MarkdownFile[] files = paths.Select(p => new MarkdownFile(p, File.ReadAllLines(p))).ToArray();
            return new MarkdownSet(root, files, p => File.Exists(p) || Directory.Exists(p));
        }

        public bool Exists(string path) => _exists(path);

        /// <summary>The lines of a Markdown file: one of the set's, else from disk if it exists there.</summary>
        public IReadOnlyList<string>? Read(string path)
        {
            MarkdownFile? known = Files.FirstOrDefault(f => f.Path == path);
            if (known is not null)
            {
                return known.Lines;
            }

            return _exists(path) && File.Exists(path) ? File.ReadAllLines(path) : null;
        }
    }

    /// <summary>Follows fenced code blocks (``` or ~~~, closed by a fence of the same character at least as long).</summary>
    private sealed class FenceTracker
    {
        private char _fenceChar;
        private int _fenceLength;

        /// <summary>Whether <paramref name="line"/> is part of a fenced code block (its fences included).</summary>
        public bool IsCode(string line)
        {
            string trimmed = line.TrimStart(' ');
            bool indentedLittle = line.Length - trimmed.Length <= 3;
            char c = trimmed.Length > 0 ? trimmed[0] : '\0';
            int run = c is '`' or '~' ? trimmed.TakeWhile(x => x == c).Count() : 0;

            if (_fenceLength == 0)
            {
                if (indentedLittle && run >= 3 && !(c == '`' && trimmed[run..].Contains('`', StringComparison.Ordinal)))
                {
                    _fenceChar = c;
                    _fenceLength = run;
                    return true;
                }

                return false;
            }

            if (indentedLittle && c == _fenceChar && run >= _fenceLength && trimmed[run..].Trim().Length == 0)
            {
                _fenceLength = 0;
            }

            return true;
        }
    }
}
