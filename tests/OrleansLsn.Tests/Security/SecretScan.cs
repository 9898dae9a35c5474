using Xunit;

namespace OrleansLsn.Tests.Security;

/// <summary>
/// Searches lines a process printed or logged for secrets: PEM blocks (<c>-----BEGIN</c>), the base64 of every private
/// key and PKCS#12 file found in the given folders, every password file's content, and any other value given. A hit is
/// reported by source, line number and kind, never with the secret itself.
/// </summary>
public sealed class SecretScan
{
    private const int MinLength = 8;
    private readonly List<(string Kind, string Value)> _secrets = [];

    public SecretScan()
    {
        _secrets.Add(("a PEM block", "-----BEGIN"));
        _secrets.Add(("a PEM private key", "PRIVATE KEY-----"));
    }

    public int Count => _secrets.Count;

    /// <summary>Adds the key material of <paramref name="folder"/> (recursively): <c>*.key</c>, <c>*.pfx</c>, <c>*.password</c>.</summary>
    public SecretScan AddKeyMaterial(string folder)
    {
        foreach (string key in Directory.EnumerateFiles(folder, "*.key", SearchOption.AllDirectories))
        {
            foreach (string line in File.ReadAllLines(key).Where(l => !l.StartsWith("-----", StringComparison.Ordinal) && l.Length >= 16))
            {
                _secrets.Add(($"private key base64 of {Path.GetFileName(key)}", line));
            }
        }

        foreach (string pfx in Directory.EnumerateFiles(folder, "*.pfx", SearchOption.AllDirectories))
        {
            string base64 = Convert.ToBase64String(File.ReadAllBytes(pfx));
            for (int i = 0; i + 32 <= base64.Length; i += 32)
            {
                _secrets.Add(($"base64 of {Path.GetFileName(pfx)}", base64.Substring(i, 32)));
            }
        }

        foreach (string password in Directory.EnumerateFiles(folder, "*.password", SearchOption.AllDirectories))
        {
            Add($"the password in {Path.GetFileName(password)}", File.ReadAllText(password).Trim());
        }

        return this;
    }

    /// <summary>Adds one secret (a password); one too short to search for fails the test, as the scan would prove nothing.</summary>
    public SecretScan Add(string kind, string value)
    {
        Assert.True(value.Length >= MinLength, $"{kind} has {value.Length} characters, too short to search for");
        _secrets.Add((kind, value));
        return this;
    }

    /// <summary>Fails naming every line (source and number) holding a secret; first proves the scan finds a planted one.</summary>
    public void AssertNoneIn(IEnumerable<(string Source, IReadOnlyList<string> Lines)> outputs, int minimumSecrets)
    {
        Assert.True(_secrets.Count >= minimumSecrets, $"only {_secrets.Count} secrets to search for; expected at least {minimumSecrets}");
        (string plantedKind, string planted) = _secrets[^1];
        Assert.NotEmpty(Hits([("planted", ["x " + planted + " y"])]));

        var hits = Hits(outputs).ToList();
        int lines = outputs.Sum(o => o.Lines.Count);
        Assert.True(lines > 0, "no output to scan");
        Assert.True(hits.Count == 0, $"secrets in the output ({lines} lines scanned):\n" + string.Join('\n', hits.Take(20)));
        TestContext.Current.SendDiagnosticMessage($"secret scan: {lines} lines of {outputs.Count()} outputs, {_secrets.Count} secrets (last planted: {plantedKind}), no hit");
    }

    private IEnumerable<string> Hits(IEnumerable<(string Source, IReadOnlyList<string> Lines)> outputs)
    {
        foreach ((string source, IReadOnlyList<string> lines) in outputs)
        {
            for (int i = 0; i < lines.Count; i++)
            {
                foreach ((string kind, string value) in _secrets)
                {
                    if (lines[i].Contains(value, StringComparison.Ordinal))
                    {
                        yield return $"{source} line {i + 1}: {kind}";
                    }
                }
            }
        }
    }
}
