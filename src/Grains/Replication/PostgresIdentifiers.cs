using System.Text;

namespace OrleansLsn.Replication;

/// <summary>
/// PostgreSQL's rules for the names the pump sends, checked before any SQL goes out, and the quoting it always applies.
/// </summary>
public static class PostgresIdentifiers
{
    /// <summary>PostgreSQL's NAMEDATALEN - 1: longer names are truncated by the server, which would address another object.</summary>
    public const int MaxLength = 63;

    /// <summary>
    /// Checks a replication slot name: 1 to 63 characters from <c>a-z</c>, <c>0-9</c> and <c>_</c>
    /// (PostgreSQL's <c>ReplicationSlotValidateName</c>). Returns <see langword="null"/> when valid, else the reason.
    /// </summary>
    public static string? CheckSlotName(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "a replication slot name must not be empty";
        }

        if (name.Length > MaxLength)
        {
            return $"replication slot name \"{Printable(name)}\" is longer than {MaxLength} characters";
        }

        foreach (char c in name)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'))
            {
                return $"replication slot name \"{Printable(name)}\" contains '{Printable(c.ToString())}'; only a-z, 0-9 and _ are allowed";
            }
        }

        return null;
    }

    /// <summary>
    /// Checks a publication name: a letter or <c>_</c>, then letters, digits, <c>_</c> or <c>$</c>, at most 63 bytes.
    /// Upper case is allowed (the name is always quoted, and pgoutput receives it quoted). Returns
    /// <see langword="null"/> when valid, else the reason.
    /// </summary>
    public static string? CheckPublicationName(string? name) => CheckPlainIdentifier(name, "publication name");

    /// <summary>
    /// Checks a table reference <c>table</c> or <c>schema.table</c>; each part follows <see cref="CheckPublicationName"/>'s
    /// rule. Returns <see langword="null"/> when valid, else the reason.
    /// </summary>
    public static string? CheckTableName(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "a table name must not be empty";
        }

        string[] parts = name.Split('.');
        if (parts.Length > 2)
        {
            return $"table name \"{Printable(name)}\" has more than two parts; use schema.table";
        }

        foreach (string part in parts)
        {
            string? problem = CheckPlainIdentifier(part, "table name part");
            if (problem is not null)
            {
                return problem;
            }
        }

        return null;
    }

    /// <summary>
    /// Checks a role name: 1 to 63 characters, a letter from <c>a-z</c> or <c>_</c> first, then <c>a-z</c>,
    /// <c>0-9</c> or <c>_</c>. Lower case only, so the name a connection string's <c>Username</c> gives is the name
    /// PostgreSQL stores whether or not it is quoted. Names PostgreSQL reserves (<c>pg_*</c>) or gives a meaning in
    /// role specifications (<c>public</c>, <c>none</c>, <c>current_user</c>, ...) are refused. Returns
    /// <see langword="null"/> when valid, else the reason.
    /// </summary>
    public static string? CheckRoleName(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "a role name must not be empty";
        }

        if (name.Length > MaxLength)
        {
            return $"role name \"{Printable(name)}\" is longer than {MaxLength} characters";
        }

        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool ok = c is (>= 'a' and <= 'z') or '_' || (i > 0 && c is >= '0' and <= '9');
            if (!ok)
            {
                return $"role name \"{Printable(name)}\" has '{Printable(c.ToString())}' at position {i}; use a-z or _ first, then a-z, 0-9 or _";
            }
        }

        if (name.StartsWith("pg_", StringComparison.Ordinal))
        {
            return $"role name \"{name}\" starts with pg_, which PostgreSQL reserves for its own roles";
        }

        if (name is "public" or "none" or "current_user" or "current_role" or "session_user")
        {
            return $"role name \"{name}\" has a special meaning in PostgreSQL; choose another";
        }

        return null;
    }

    /// <summary>Quotes a string as an SQL literal: wraps it in single quotes and doubles any single quote inside.</summary>
    public static string QuoteLiteral(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
    }

    /// <summary>Quotes an identifier for SQL: wraps it in double quotes and doubles any double quote inside.</summary>
    public static string Quote(string identifier)
    {
        ArgumentNullException.ThrowIfNull(identifier);
        return "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>Quotes <c>table</c> or <c>schema.table</c> part by part.</summary>
    public static string QuoteTable(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int dot = name.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? Quote(name) : Quote(name[..dot]) + "." + Quote(name[(dot + 1)..]);
    }

    private static string? CheckPlainIdentifier(string? name, string what)
    {
        if (string.IsNullOrEmpty(name))
        {
            return $"a {what} must not be empty";
        }

        if (Encoding.UTF8.GetByteCount(name) > MaxLength)
        {
            return $"{what} \"{Printable(name)}\" is longer than {MaxLength} bytes";
        }

        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool letter = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_';
            bool ok = i == 0 ? letter : letter || c is (>= '0' and <= '9') or '$';
            if (!ok)
            {
                return $"{what} \"{Printable(name)}\" has '{Printable(c.ToString())}' at position {i}; use a letter or _ first, then letters, digits, _ or $";
            }
        }

        return null;
    }

    // Names come from callers and end up in exception messages and logs; control characters must not forge log lines.
    private static string Printable(string s)
    {
        var sb = new StringBuilder(Math.Min(s.Length, 80));
        foreach (char c in s)
        {
            if (sb.Length >= 80)
            {
                sb.Append('…');
                break;
            }

            sb.Append(char.IsControl(c) ? '?' : c);
        }

        return sb.ToString();
    }
}
