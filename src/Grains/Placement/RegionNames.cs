namespace OrleansLsn.Placement;

/// <summary>The rule for region names (silo configuration and tracker grain keys), checked before anything uses one.</summary>
public static class RegionNames
{
    /// <summary>The longest region name.</summary>
    public const int MaxLength = 63;

    /// <summary>
    /// Checks a region name: 1 to 63 characters from letters, digits, <c>-</c>, <c>_</c> and <c>.</c>, starting with a
    /// letter or digit. Returns <see langword="null"/> when valid, else the reason (the name shown safely).
    /// </summary>
    public static string? Check(string? region)
    {
        if (string.IsNullOrEmpty(region))
        {
            return "a region name must not be empty";
        }

        if (region.Length > MaxLength)
        {
            return $"region name \"{Printable(region)}\" is longer than {MaxLength} characters";
        }

        if (!char.IsAsciiLetterOrDigit(region[0]))
        {
            return $"region name \"{Printable(region)}\" must start with a letter or digit";
        }

        foreach (char c in region)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            {
                return $"region name \"{Printable(region)}\" contains '{Printable(c.ToString())}'; only letters, digits, '-', '_' and '.' are allowed";
            }
        }

        return null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> when <paramref name="region"/> is not a valid region name.</summary>
    public static void ThrowIfInvalid(string? region, string paramName)
    {
        if (Check(region) is { } problem)
        {
            throw new ArgumentException($"Invalid region: {problem}.", paramName);
        }
    }

    /// <summary>At most 64 characters of <paramref name="text"/>, control characters replaced by '?'.</summary>
    internal static string Printable(string text)
    {
        string cut = text.Length > 64 ? text[..64] + "..." : text;
        return string.Create(cut.Length, cut, static (span, s) =>
        {
            for (int i = 0; i < s.Length; i++)
            {
                span[i] = char.IsControl(s[i]) ? '?' : s[i];
            }
        });
    }
}
