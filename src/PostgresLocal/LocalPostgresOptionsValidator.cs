namespace OrleansLsn.PostgresLocal;

/// <summary>Checks <see cref="LocalPostgresOptions"/> before a cluster is started, so a bad value costs nothing.</summary>
internal static class LocalPostgresOptionsValidator
{
    internal const int MaxStandbyNameLength = 32;

    // Folder names the cluster folder already uses for itself.
    private static readonly string[] ReservedNames = ["primary", OwnerMarker.FileName];

    /// <summary>Returns the standbys to create, in order: none when <see cref="LocalPostgresOptions.WithStandby"/> is off.</summary>
    /// <exception cref="ArgumentException">A standby name is missing, malformed, reserved or repeated.</exception>
    internal static IReadOnlyList<string> GetStandbyNames(LocalPostgresOptions options)
    {
        if (!options.WithStandby)
        {
            return [];
        }

        if (options.StandbyNames is null)
        {
            throw new ArgumentException(
                $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.StandbyNames)} is null; use an empty list (or {nameof(LocalPostgresOptions.WithStandby)} = false) for no standby.",
                nameof(options));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var names = new List<string>(options.StandbyNames.Count);
        foreach (string? name in options.StandbyNames)
        {
            string? problem = DescribeProblem(name);
            if (problem is not null)
            {
                throw new ArgumentException(
                    $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.StandbyNames)}: {problem}", nameof(options));
            }

            if (!seen.Add(name!))
            {
                throw new ArgumentException(
                    $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.StandbyNames)}: the standby name '{name}' appears more than once; each standby needs its own name.",
                    nameof(options));
            }

            names.Add(name!);
        }

        foreach (string name in options.StandbySettings.Keys)
        {
            if (!seen.Contains(name))
            {
                throw new ArgumentException(
                    $"{nameof(LocalPostgresOptions)}.{nameof(LocalPostgresOptions.StandbySettings)}: '{name}' is not one of the standbys ({(names.Count == 0 ? "none" : string.Join(", ", names))}).",
                    nameof(options));
            }
        }

        return names;
    }

    private static string? DescribeProblem(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "a standby name is null or empty.";
        }

        if (name.Length > MaxStandbyNameLength)
        {
            return $"the standby name '{name}' has {name.Length} characters; at most {MaxStandbyNameLength} are allowed.";
        }

        foreach (char c in name)
        {
            if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c != '-' && c != '_')
            {
                return $"the standby name '{name}' contains '{c}'; only lowercase letters a-z, digits, '-' and '_' are allowed.";
            }
        }

        if (ReservedNames.Contains(name, StringComparer.Ordinal))
        {
            return $"the standby name '{name}' is reserved (the cluster folder uses it); choose another.";
        }

        return null;
    }
}
