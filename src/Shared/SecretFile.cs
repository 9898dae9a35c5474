using System.Text;

namespace OrleansLsn;

/// <summary>
/// Secrets read from files, as container runtimes provide them (<c>/run/secrets/...</c>): a key <c>X</c> may instead be
/// given as <c>XFile</c>, the path of a file whose content (without its trailing newline) is the value. Problems are named
/// by their key and path, never with the file's content. Compiled into each assembly that reads such keys.
/// </summary>
internal static class SecretFile
{
    /// <summary>A secret is short; a larger file is a wrong path (a log, a device), not a secret.</summary>
    internal const int MaxChars = 64 * 1024;

    /// <summary>
    /// The value of <paramref name="key"/>: <paramref name="value"/> when <paramref name="file"/> is not set, else the
    /// file's content. When both are set, or the file is missing, unreadable, empty or too large, a problem naming
    /// <paramref name="key"/> (or its <c>File</c> key) is added to <paramref name="failures"/> and
    /// <paramref name="value"/> is returned unchanged.
    /// </summary>
    internal static string? Resolve(string key, string? value, string? file, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(file))
        {
            return value;
        }

        string fileKey = key + "File";
        if (!string.IsNullOrEmpty(value))
        {
            failures.Add($"{key} and {fileKey} are both set; set only one of them.");
            return value;
        }

        return TryRead(fileKey, file, failures) ?? value;
    }

    /// <summary>
    /// Reads the secret in <paramref name="path"/> (trailing <c>\r</c> and <c>\n</c> removed), or adds a problem naming
    /// <paramref name="fileKey"/> and the path to <paramref name="failures"/> and returns <see langword="null"/>.
    /// </summary>
    internal static string? TryRead(string fileKey, string path, List<string> failures)
    {
        string content;
        try
        {
            using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            var buffer = new char[MaxChars + 1];
            int read = reader.ReadBlock(buffer, 0, buffer.Length);
            if (read > MaxChars)
            {
                failures.Add($"{fileKey}: file '{path}' is larger than {MaxChars / 1024} KiB; it does not look like a secret.");
                return null;
            }

            content = new string(buffer, 0, read).TrimEnd('\r', '\n');
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            failures.Add($"{fileKey}: file '{path}' does not exist.");
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            // The type says enough (permission, a folder, ...); the message is left out as some quote more than the path.
            failures.Add($"{fileKey}: file '{path}' cannot be read ({e.GetType().Name}).");
            return null;
        }

        if (string.IsNullOrWhiteSpace(content))
        {
            failures.Add($"{fileKey}: file '{path}' is empty.");
            return null;
        }

        return content;
    }
}
