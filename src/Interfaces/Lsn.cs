using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json.Serialization;

namespace OrleansLsn;

/// <summary>
/// A PostgreSQL log sequence number (the <c>pg_lsn</c> type): a byte position in the write-ahead log.
/// </summary>
/// <remarks>
/// <para>
/// The text form is the one PostgreSQL uses: the upper and lower 32 bits as upper-case hexadecimal without padding,
/// separated by a slash (<c>0/0</c>, <c>16/B374D848</c>). <see cref="ToString()"/> produces exactly what
/// <c>pg_lsn</c> output produces, and <see cref="Parse(string)"/> accepts exactly what <c>pg_lsn</c> input accepts:
/// 1 to 8 hexadecimal digits (either case), <c>/</c>, 1 to 8 hexadecimal digits, and nothing else: no whitespace,
/// no sign, no <c>0x</c> prefix, no ninth digit even if it is a leading zero.
/// </para>
/// <para>
/// Ordering, equality and hashing are those of <see cref="Value"/>. The default value is <see cref="Invalid"/>.
/// Parsing from a span and formatting into a span never allocate.
/// </para>
/// </remarks>
[GenerateSerializer]
[Immutable]
[Alias("OrleansLsn.Lsn")]
public readonly struct Lsn :
    IEquatable<Lsn>,
    IComparable<Lsn>,
    IComparable,
    ISpanParsable<Lsn>,
    IUtf8SpanParsable<Lsn>,
    ISpanFormattable,
    IUtf8SpanFormattable,
    IComparisonOperators<Lsn, Lsn, bool>,
    IEqualityOperators<Lsn, Lsn, bool>
{
    /// <summary>
    /// <c>0/0</c>, PostgreSQL's <c>InvalidXLogRecPtr</c>: no WAL position. Also the <see langword="default"/> value.
    /// </summary>
    public static readonly Lsn Invalid;

    /// <summary>The largest LSN, <c>FFFFFFFF/FFFFFFFF</c>.</summary>
    public static readonly Lsn MaxValue = new(ulong.MaxValue);

    /// <summary>The most hexadecimal digits PostgreSQL accepts on either side of the slash.</summary>
    private const int MaxComponentDigits = 8;

    /// <summary>The longest text form: two components of 8 digits and the slash.</summary>
    private const int MaxFormattedLength = (2 * MaxComponentDigits) + 1;

    /// <summary>How much of rejected input a <see cref="FormatException"/> message quotes.</summary>
    private const int MaxQuotedInputLength = 64;

    /// <summary>Creates an LSN from its 64-bit WAL byte position.</summary>
    /// <param name="value">The position; every value is representable, 0 being <see cref="Invalid"/>.</param>
    [JsonConstructor]
    public Lsn(ulong value)
    {
        Value = value;
    }

    /// <summary>The 64-bit WAL byte position (upper 32 bits before the slash, lower 32 bits after it).</summary>
    [Id(0)]
    public ulong Value { get; }

    /// <summary><see langword="false"/> only for <see cref="Invalid"/> (<c>0/0</c>).</summary>
    [JsonIgnore]
    public bool IsValid => Value != 0;

    /// <summary>The upper 32 bits: the part before the slash.</summary>
    private uint Upper => (uint)(Value >> 32);

    /// <summary>The lower 32 bits: the part after the slash.</summary>
    private uint Lower => (uint)Value;

    /// <summary>
    /// Converts an LSN to its 64-bit position. Explicit, like the opposite conversion, so that positions and byte
    /// counts are not mixed up by accident.
    /// </summary>
    /// <param name="lsn">The LSN.</param>
    public static explicit operator ulong(Lsn lsn) => lsn.Value;

    /// <summary>
    /// Converts a 64-bit position to an LSN. It cannot fail, but it is explicit so that a byte count is not taken for
    /// a position by accident.
    /// </summary>
    /// <param name="value">The position.</param>
    public static explicit operator Lsn(ulong value) => new(value);

    /// <summary>Whether <paramref name="left"/> and <paramref name="right"/> are the same position.</summary>
    /// <param name="left">The first LSN.</param>
    /// <param name="right">The second LSN.</param>
    public static bool operator ==(Lsn left, Lsn right) => left.Value == right.Value;

    /// <summary>Whether <paramref name="left"/> and <paramref name="right"/> are different positions.</summary>
    /// <param name="left">The first LSN.</param>
    /// <param name="right">The second LSN.</param>
    public static bool operator !=(Lsn left, Lsn right) => left.Value != right.Value;

    /// <summary>Whether <paramref name="left"/> comes before <paramref name="right"/> in the WAL.</summary>
    /// <param name="left">The first LSN.</param>
    /// <param name="right">The second LSN.</param>
    public static bool operator <(Lsn left, Lsn right) => left.Value < right.Value;

    /// <summary>Whether <paramref name="left"/> comes after <paramref name="right"/> in the WAL.</summary>
    /// <param name="left">The first LSN.</param>
    /// <param name="right">The second LSN.</param>
    public static bool operator >(Lsn left, Lsn right) => left.Value > right.Value;

    /// <summary>Whether <paramref name="left"/> is at or before <paramref name="right"/>.</summary>
    /// <param name="left">The first LSN.</param>
    /// <param name="right">The second LSN.</param>
    public static bool operator <=(Lsn left, Lsn right) => left.Value <= right.Value;

    /// <summary>Whether <paramref name="left"/> is at or after <paramref name="right"/>.</summary>
    /// <param name="left">The first LSN.</param>
    /// <param name="right">The second LSN.</param>
    public static bool operator >=(Lsn left, Lsn right) => left.Value >= right.Value;

    /// <summary>
    /// The signed number of WAL bytes from <paramref name="right"/> to <paramref name="left"/>, like PostgreSQL's
    /// <c>pg_lsn - pg_lsn</c> (which returns a numeric). See <see cref="Subtract(Lsn)"/>.
    /// </summary>
    /// <param name="left">The later position (the result is negative if it is actually earlier).</param>
    /// <param name="right">The earlier position.</param>
    /// <returns><c>left.Value - right.Value</c> as a signed number.</returns>
    /// <exception cref="OverflowException">The distance does not fit in a <see cref="long"/> (more than 8 EiB apart).</exception>
    public static long operator -(Lsn left, Lsn right) => left.Subtract(right);

    /// <summary>The position <paramref name="bytes"/> bytes after <paramref name="lsn"/>. See <see cref="Add(ulong)"/>.</summary>
    /// <param name="lsn">The starting position.</param>
    /// <param name="bytes">How many bytes to advance.</param>
    /// <exception cref="OverflowException">The result would be past <see cref="MaxValue"/>.</exception>
    public static Lsn operator +(Lsn lsn, ulong bytes) => lsn.Add(bytes);

    /// <summary>Creates an LSN from its 64-bit position; same as <see cref="Lsn(ulong)"/>.</summary>
    /// <param name="value">The position.</param>
    /// <returns>The LSN.</returns>
    public static Lsn FromUInt64(ulong value) => new(value);

    /// <summary>Parses PostgreSQL's text form. Accepts exactly what <c>pg_lsn</c> input accepts (see <see cref="Lsn"/>).</summary>
    /// <param name="s">The text, for example <c>16/B374D848</c>.</param>
    /// <returns>The LSN.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="s"/> is <see langword="null"/>.</exception>
    /// <exception cref="FormatException"><paramref name="s"/> is not a valid LSN; the message quotes it.</exception>
    public static Lsn Parse(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return Parse(s.AsSpan());
    }

    /// <summary>Parses PostgreSQL's text form; the format provider is ignored. See <see cref="Parse(string)"/>.</summary>
    /// <param name="s">The text.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <returns>The LSN.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="s"/> is <see langword="null"/>.</exception>
    /// <exception cref="FormatException"><paramref name="s"/> is not a valid LSN; the message quotes it.</exception>
    public static Lsn Parse(string s, IFormatProvider? provider) => Parse(s);

    /// <summary>Parses PostgreSQL's text form without allocating (unless it throws). See <see cref="Parse(string)"/>.</summary>
    /// <param name="s">The text.</param>
    /// <returns>The LSN.</returns>
    /// <exception cref="FormatException"><paramref name="s"/> is not a valid LSN; the message quotes it.</exception>
    public static Lsn Parse(ReadOnlySpan<char> s)
    {
        if (!TryParseCore(s, out Lsn result))
        {
            ThrowFormatException(s);
        }

        return result;
    }

    /// <summary>Parses PostgreSQL's text form; the format provider is ignored. See <see cref="Parse(ReadOnlySpan{char})"/>.</summary>
    /// <param name="s">The text.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <returns>The LSN.</returns>
    /// <exception cref="FormatException"><paramref name="s"/> is not a valid LSN; the message quotes it.</exception>
    public static Lsn Parse(ReadOnlySpan<char> s, IFormatProvider? provider) => Parse(s);

    /// <summary>Parses PostgreSQL's text form from UTF-8 without allocating (unless it throws).</summary>
    /// <param name="utf8Text">The UTF-8 text.</param>
    /// <returns>The LSN.</returns>
    /// <exception cref="FormatException"><paramref name="utf8Text"/> is not a valid LSN; the message quotes it.</exception>
    public static Lsn Parse(ReadOnlySpan<byte> utf8Text)
    {
        if (!TryParseCore(utf8Text, out Lsn result))
        {
            ThrowFormatException(Encoding.UTF8.GetString(utf8Text));
        }

        return result;
    }

    /// <summary>Parses PostgreSQL's text form from UTF-8; the format provider is ignored.</summary>
    /// <param name="utf8Text">The UTF-8 text.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <returns>The LSN.</returns>
    /// <exception cref="FormatException"><paramref name="utf8Text"/> is not a valid LSN; the message quotes it.</exception>
    public static Lsn Parse(ReadOnlySpan<byte> utf8Text, IFormatProvider? provider) => Parse(utf8Text);

    /// <summary>Tries to parse PostgreSQL's text form. Accepts exactly what <c>pg_lsn</c> input accepts.</summary>
    /// <param name="s">The text; <see langword="null"/> is rejected.</param>
    /// <param name="result">The LSN, or <see cref="Invalid"/> when the text is rejected.</param>
    /// <returns>Whether <paramref name="s"/> is a valid LSN.</returns>
    public static bool TryParse([NotNullWhen(true)] string? s, out Lsn result)
    {
        if (s is null)
        {
            result = Invalid;
            return false;
        }

        return TryParseCore(s.AsSpan(), out result);
    }

    /// <summary>Tries to parse PostgreSQL's text form; the format provider is ignored.</summary>
    /// <param name="s">The text; <see langword="null"/> is rejected.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <param name="result">The LSN, or <see cref="Invalid"/> when the text is rejected.</param>
    /// <returns>Whether <paramref name="s"/> is a valid LSN.</returns>
    public static bool TryParse([NotNullWhen(true)] string? s, IFormatProvider? provider, out Lsn result) =>
        TryParse(s, out result);

    /// <summary>Tries to parse PostgreSQL's text form without allocating.</summary>
    /// <param name="s">The text.</param>
    /// <param name="result">The LSN, or <see cref="Invalid"/> when the text is rejected.</param>
    /// <returns>Whether <paramref name="s"/> is a valid LSN.</returns>
    public static bool TryParse(ReadOnlySpan<char> s, out Lsn result) => TryParseCore(s, out result);

    /// <summary>Tries to parse PostgreSQL's text form without allocating; the format provider is ignored.</summary>
    /// <param name="s">The text.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <param name="result">The LSN, or <see cref="Invalid"/> when the text is rejected.</param>
    /// <returns>Whether <paramref name="s"/> is a valid LSN.</returns>
    public static bool TryParse(ReadOnlySpan<char> s, IFormatProvider? provider, out Lsn result) =>
        TryParseCore(s, out result);

    /// <summary>Tries to parse PostgreSQL's text form from UTF-8 without allocating.</summary>
    /// <param name="utf8Text">The UTF-8 text.</param>
    /// <param name="result">The LSN, or <see cref="Invalid"/> when the text is rejected.</param>
    /// <returns>Whether <paramref name="utf8Text"/> is a valid LSN.</returns>
    public static bool TryParse(ReadOnlySpan<byte> utf8Text, out Lsn result) => TryParseCore(utf8Text, out result);

    /// <summary>Tries to parse PostgreSQL's text form from UTF-8 without allocating; the format provider is ignored.</summary>
    /// <param name="utf8Text">The UTF-8 text.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <param name="result">The LSN, or <see cref="Invalid"/> when the text is rejected.</param>
    /// <returns>Whether <paramref name="utf8Text"/> is a valid LSN.</returns>
    public static bool TryParse(ReadOnlySpan<byte> utf8Text, IFormatProvider? provider, out Lsn result) =>
        TryParseCore(utf8Text, out result);

    /// <summary>The 64-bit position; same as the explicit conversion to <see cref="ulong"/>.</summary>
    /// <returns><see cref="Value"/>.</returns>
    public ulong ToUInt64() => Value;

    /// <summary>
    /// The signed number of WAL bytes from <paramref name="other"/> to this LSN; same as <c>this - other</c>.
    /// </summary>
    /// <param name="other">The position to measure from.</param>
    /// <returns><c>Value - other.Value</c> as a signed number: negative when this LSN is earlier.</returns>
    /// <exception cref="OverflowException">The distance does not fit in a <see cref="long"/> (more than 8 EiB apart).</exception>
    public long Subtract(Lsn other)
    {
        if (Value >= other.Value)
        {
            ulong forward = Value - other.Value;
            if (forward > long.MaxValue)
            {
                throw DistanceOverflow(this, other);
            }

            return (long)forward;
        }

        ulong backward = other.Value - Value;
        if (backward > (ulong)long.MaxValue + 1)
        {
            throw DistanceOverflow(this, other);
        }

        // 2^63 maps to long.MinValue, which is exactly -2^63.
        return unchecked((long)(0UL - backward));
    }

    /// <summary>The position <paramref name="bytes"/> bytes after this one; same as <c>this + bytes</c>.</summary>
    /// <param name="bytes">How many bytes to advance.</param>
    /// <returns>The later position.</returns>
    /// <exception cref="OverflowException">The result would be past <see cref="MaxValue"/>.</exception>
    public Lsn Add(ulong bytes)
    {
        if (bytes > ulong.MaxValue - Value)
        {
            throw new OverflowException(string.Create(
                CultureInfo.InvariantCulture,
                $"Advancing LSN {this} by {bytes} bytes would go past {MaxValue}."));
        }

        return new Lsn(Value + bytes);
    }

    /// <inheritdoc/>
    public bool Equals(Lsn other) => Value == other.Value;

    /// <inheritdoc/>
    public override bool Equals([NotNullWhen(true)] object? obj) => obj is Lsn other && Value == other.Value;

    /// <inheritdoc/>
    public override int GetHashCode() => Value.GetHashCode();

    /// <summary>Compares positions: negative if this LSN is earlier than <paramref name="other"/>, 0 if equal, positive if later.</summary>
    /// <param name="other">The LSN to compare with.</param>
    /// <returns>The sign of <c>Value - other.Value</c>.</returns>
    public int CompareTo(Lsn other) => Value.CompareTo(other.Value);

    /// <summary>Compares with a boxed <see cref="Lsn"/>; <see langword="null"/> sorts first.</summary>
    /// <param name="obj">A boxed <see cref="Lsn"/> or <see langword="null"/>.</param>
    /// <returns>The comparison result, or 1 for <see langword="null"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="obj"/> is neither <see langword="null"/> nor an <see cref="Lsn"/>.</exception>
    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        Lsn other => CompareTo(other),
        _ => throw new ArgumentException($"Object must be of type {nameof(Lsn)}, not {obj.GetType()}.", nameof(obj)),
    };

    /// <summary>PostgreSQL's text form: <c>%X/%X</c> of the upper and lower 32 bits (<c>0/0</c>, <c>16/B374D848</c>).</summary>
    /// <returns>The text form.</returns>
    public override string ToString()
    {
        Span<char> buffer = stackalloc char[MaxFormattedLength];
        int written = FormatCore(buffer);
        return new string(buffer[..written]);
    }

    /// <summary>PostgreSQL's text form. See <see cref="ToString()"/>.</summary>
    /// <param name="format">Must be <see langword="null"/>, empty, <c>G</c> or <c>g</c>; all mean the text form.</param>
    /// <param name="formatProvider">Ignored: the format does not depend on culture.</param>
    /// <returns>The text form.</returns>
    /// <exception cref="FormatException"><paramref name="format"/> is not supported.</exception>
    public string ToString(string? format, IFormatProvider? formatProvider)
    {
        ValidateFormat(format);
        return ToString();
    }

    /// <summary>Writes PostgreSQL's text form without allocating; at most 17 characters.</summary>
    /// <param name="destination">Where to write.</param>
    /// <param name="charsWritten">How many characters were written; 0 when <paramref name="destination"/> is too short.</param>
    /// <param name="format">Must be empty, <c>G</c> or <c>g</c>.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <returns>Whether <paramref name="destination"/> was long enough.</returns>
    /// <exception cref="FormatException"><paramref name="format"/> is not supported.</exception>
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        ValidateFormat(format);
        return TryFormatCore(destination, out charsWritten);
    }

    /// <summary>Writes PostgreSQL's text form as UTF-8 without allocating; at most 17 bytes.</summary>
    /// <param name="utf8Destination">Where to write.</param>
    /// <param name="bytesWritten">How many bytes were written; 0 when <paramref name="utf8Destination"/> is too short.</param>
    /// <param name="format">Must be empty, <c>G</c> or <c>g</c>.</param>
    /// <param name="provider">Ignored: the format does not depend on culture.</param>
    /// <returns>Whether <paramref name="utf8Destination"/> was long enough.</returns>
    /// <exception cref="FormatException"><paramref name="format"/> is not supported.</exception>
    public bool TryFormat(Span<byte> utf8Destination, out int bytesWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        ValidateFormat(format);
        return TryFormatCore(utf8Destination, out bytesWritten);
    }

    /// <summary>
    /// PostgreSQL's <c>pg_lsn_in</c>: <c>strspn</c> a run of 1 to 8 hexadecimal digits, require <c>/</c>, then a run of 1
    /// to 8 hexadecimal digits that must end the input. Works on UTF-16 code units and on UTF-8 bytes alike, since every
    /// accepted character is ASCII and no non-ASCII unit can be mistaken for one.
    /// </summary>
    private static bool TryParseCore<TChar>(ReadOnlySpan<TChar> text, out Lsn result)
        where TChar : unmanaged, IBinaryInteger<TChar>
    {
        result = Invalid;

        int upperDigits = HexRunLength(text);
        if (upperDigits is < 1 or > MaxComponentDigits
            || upperDigits == text.Length
            || uint.CreateTruncating(text[upperDigits]) != '/')
        {
            return false;
        }

        ReadOnlySpan<TChar> lower = text[(upperDigits + 1)..];
        int lowerDigits = HexRunLength(lower);
        if (lowerDigits is < 1 or > MaxComponentDigits || lowerDigits != lower.Length)
        {
            return false;
        }

        result = new Lsn(((ulong)HexValue(text[..upperDigits]) << 32) | HexValue(lower));
        return true;
    }

    /// <summary>The number of leading hexadecimal digits, counting no further than one past the maximum.</summary>
    private static int HexRunLength<TChar>(ReadOnlySpan<TChar> text)
        where TChar : unmanaged, IBinaryInteger<TChar>
    {
        int limit = Math.Min(text.Length, MaxComponentDigits + 1);
        int length = 0;
        while (length < limit && HexDigitValue(uint.CreateTruncating(text[length])) >= 0)
        {
            length++;
        }

        return length;
    }

    /// <summary>The value of at most 8 hexadecimal digits already validated by <see cref="HexRunLength"/>.</summary>
    private static uint HexValue<TChar>(ReadOnlySpan<TChar> digits)
        where TChar : unmanaged, IBinaryInteger<TChar>
    {
        uint value = 0;
        foreach (TChar digit in digits)
        {
            value = (value << 4) | (uint)HexDigitValue(uint.CreateTruncating(digit));
        }

        return value;
    }

    /// <summary>The value of an ASCII hexadecimal digit, or -1 for any other code unit.</summary>
    private static int HexDigitValue(uint unit) => unit switch
    {
        >= '0' and <= '9' => (int)(unit - '0'),
        >= 'A' and <= 'F' => (int)(unit - 'A' + 10),
        >= 'a' and <= 'f' => (int)(unit - 'a' + 10),
        _ => -1,
    };

    private static void ValidateFormat(ReadOnlySpan<char> format)
    {
        if (format.Length == 0 || (format.Length == 1 && (format[0] == 'G' || format[0] == 'g')))
        {
            return;
        }

        throw new FormatException($"Format \"{format}\" is not supported by {nameof(Lsn)}; use \"G\" or no format.");
    }

    [DoesNotReturn]
    private static void ThrowFormatException(ReadOnlySpan<char> text) =>
        throw new FormatException(
            $"\"{Quote(text)}\" is not a valid PostgreSQL LSN: expected 1 to 8 hexadecimal digits, '/', and 1 to 8 "
            + "hexadecimal digits, with nothing around them (for example \"16/B374D848\").");

    /// <summary>The input for an error message: truncated if long, with control characters escaped.</summary>
    private static string Quote(ReadOnlySpan<char> text)
    {
        bool truncated = text.Length > MaxQuotedInputLength;
        ReadOnlySpan<char> shown = truncated ? text[..MaxQuotedInputLength] : text;
        StringBuilder builder = new(shown.Length + 8);
        foreach (char c in shown)
        {
            _ = c switch
            {
                '"' => builder.Append("\\\""),
                '\\' => builder.Append("\\\\"),
                '\n' => builder.Append("\\n"),
                '\r' => builder.Append("\\r"),
                '\t' => builder.Append("\\t"),
                _ when char.IsControl(c) => builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"),
                _ => builder.Append(c),
            };
        }

        if (truncated)
        {
            builder.Append(CultureInfo.InvariantCulture, $"\u2026 ({text.Length} characters)");
        }

        return builder.ToString();
    }

    private static OverflowException DistanceOverflow(Lsn left, Lsn right) =>
        new(string.Create(
            CultureInfo.InvariantCulture,
            $"The distance from LSN {right} to LSN {left} does not fit in a signed 64-bit integer."));

    private bool TryFormatCore<TChar>(Span<TChar> destination, out int written)
        where TChar : unmanaged, IBinaryInteger<TChar>
    {
        int length = HexLength(Upper) + 1 + HexLength(Lower);
        if (destination.Length < length)
        {
            written = 0;
            return false;
        }

        written = FormatCore(destination);
        return true;
    }

    /// <summary>Writes the text form into a destination already known to be long enough; returns its length.</summary>
    private int FormatCore<TChar>(Span<TChar> destination)
        where TChar : unmanaged, IBinaryInteger<TChar>
    {
        int upperLength = WriteHex(Upper, destination);
        destination[upperLength] = TChar.CreateTruncating('/');
        return upperLength + 1 + WriteHex(Lower, destination[(upperLength + 1)..]);
    }

    /// <summary>The number of digits <c>%X</c> prints for <paramref name="value"/> (at least 1).</summary>
    private static int HexLength(uint value) => value == 0 ? 1 : (35 - BitOperations.LeadingZeroCount(value)) / 4;

    /// <summary>Writes <c>%X</c> of <paramref name="value"/>: upper case, no padding. Returns the digit count.</summary>
    private static int WriteHex<TChar>(uint value, Span<TChar> destination)
        where TChar : unmanaged, IBinaryInteger<TChar>
    {
        int length = HexLength(value);
        for (int i = length - 1; i >= 0; i--)
        {
            uint nibble = value & 0xF;
            destination[i] = TChar.CreateTruncating(nibble < 10 ? '0' + nibble : 'A' + nibble - 10);
            value >>= 4;
        }

        return length;
    }
}
