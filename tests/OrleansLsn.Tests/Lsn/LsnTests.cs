using System.Text;
using Xunit;

// Not "OrleansLsn.Tests.Lsn": a namespace of that name would hide the Lsn type inside OrleansLsn.Tests.
namespace OrleansLsn.Tests.LsnType;

public sealed class LsnTests
{
    private const ulong Bit63 = 1UL << 63;

    /// <summary>Texts pg_lsn rejects (checked against the server by <see cref="LsnDifferentialTests"/>).</summary>
    public static TheoryData<string> InvalidTexts => new(
        string.Empty,
        "0",
        "/",
        "0/",
        "/0",
        "G/0",
        "0/G",
        "100000000/0",
        "0/100000000",
        "0000000001/0",
        "000000000/0",
        "0/000000000",
        "-1/0",
        "+1/0",
        "0/-1",
        " 0/1",
        "0/1 ",
        "0 /1",
        "0/ 1",
        "0//1",
        "1/2/3",
        "0x1/0",
        "0/0x1",
        "1/0\n",
        "\t1/0",
        "1/0\0",
        "\uFF11/0",
        "0/\uFF11",
        "1.0/0",
        "1_0/0",
        "1\\0");

    [Fact]
    public void InvalidIsTheDefaultAndZero()
    {
        Assert.Equal(default(Lsn), Lsn.Invalid);
        Assert.Equal(0UL, Lsn.Invalid.Value);
        Assert.False(Lsn.Invalid.IsValid);
        Assert.False(default(Lsn).IsValid);
        Assert.Equal("0/0", Lsn.Invalid.ToString());
        Assert.True(new Lsn(1).IsValid);
    }

    [Fact]
    public void MaxValueIsAllOnes()
    {
        Assert.Equal(ulong.MaxValue, Lsn.MaxValue.Value);
        Assert.True(Lsn.MaxValue.IsValid);
        Assert.Equal("FFFFFFFF/FFFFFFFF", Lsn.MaxValue.ToString());
        Assert.Equal(Lsn.MaxValue, Lsn.Parse("FFFFFFFF/FFFFFFFF"));
    }

    [Fact]
    public void UInt64ConversionsRoundTrip()
    {
        foreach (ulong value in new[] { 0UL, 1UL, 0xFFFFFFFFUL, 0x1_0000_0000UL, 0x16_B374_D848UL, Bit63, ulong.MaxValue })
        {
            Lsn lsn = new(value);
            Assert.Equal(value, lsn.Value);
            Assert.Equal(value, (ulong)lsn);
            Assert.Equal(value, lsn.ToUInt64());
            Assert.Equal(lsn, (Lsn)value);
            Assert.Equal(lsn, Lsn.FromUInt64(value));
        }
    }

    [Fact]
    public void OrdersByValue()
    {
        Lsn[] ascending =
        [
            Lsn.Invalid,
            new(1),
            new(0xFFFFFFFF),
            new(0x1_0000_0000),
            new(0x16_B374_D848),
            new(Bit63 - 1),
            new(Bit63),
            Lsn.MaxValue,
        ];

        for (int i = 0; i < ascending.Length; i++)
        {
            for (int j = 0; j < ascending.Length; j++)
            {
                Lsn a = ascending[i];
                Lsn b = ascending[j];
                string pair = $"{a} vs {b}";
                Assert.True(Math.Sign(a.CompareTo(b)) == i.CompareTo(j), pair);
                Assert.True(Math.Sign(((IComparable)a).CompareTo(b)) == i.CompareTo(j), pair);
                Assert.True((a < b) == (i < j), pair);
                Assert.True((a > b) == (i > j), pair);
                Assert.True((a <= b) == (i <= j), pair);
                Assert.True((a >= b) == (i >= j), pair);
                Assert.True((a == b) == (i == j), pair);
                Assert.True((a != b) == (i != j), pair);
                Assert.True(a.Equals(b) == (i == j), pair);
                Assert.True(a.Equals((object)b) == (i == j), pair);
            }
        }

        Lsn[] shuffled = [.. ascending.Reverse()];
        Array.Sort(shuffled);
        Assert.Equal(ascending, shuffled);
    }

    [Fact]
    public void NonGenericCompareToHandlesNullAndOtherTypes()
    {
        IComparable lsn = new Lsn(5);
        Assert.True(lsn.CompareTo(null) > 0);
        Assert.Equal(0, lsn.CompareTo(new Lsn(5)));
        Assert.Throws<ArgumentException>(() => lsn.CompareTo(5UL));
        Assert.Throws<ArgumentException>(() => lsn.CompareTo("0/5"));
    }

    [Fact]
    public void EqualityAndHashFollowValue()
    {
        Lsn a = Lsn.Parse("16/B374D848");
        Lsn b = new(0x16_B374_D848);
        Assert.Equal(a, b);
        Assert.True(a == b);
        Assert.False(a != b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.True(a.Equals((object)b));
        Assert.False(a.Equals(null));
        Assert.False(a.Equals(0x16_B374_D848UL));
        Assert.Single(new HashSet<Lsn> { a, b, Lsn.Parse("16/b374d848"), Lsn.Parse("00000016/B374D848") });
        Assert.NotEqual(a, a + 1);
    }

    [Theory]
    [InlineData(0UL, 0UL, 0L)]
    [InlineData(10UL, 3UL, 7L)]
    [InlineData(3UL, 10UL, -7L)]
    [InlineData(0x1_0000_0000UL, 0xFFFF_FFFFUL, 1L)]
    [InlineData(Bit63 - 1, 0UL, long.MaxValue)]
    [InlineData(0UL, Bit63 - 1, -long.MaxValue)]
    [InlineData(0UL, Bit63, long.MinValue)]
    [InlineData(ulong.MaxValue, Bit63, long.MaxValue)]
    [InlineData(Bit63, ulong.MaxValue, -long.MaxValue)]
    [InlineData(Bit63 - 1, ulong.MaxValue, long.MinValue)]
    public void SubtractionIsTheSignedByteDistance(ulong left, ulong right, long expected)
    {
        Assert.Equal(expected, new Lsn(left) - new Lsn(right));
        Assert.Equal(expected, new Lsn(left).Subtract(new Lsn(right)));
    }

    [Theory]
    [InlineData(Bit63, 0UL)]
    [InlineData(ulong.MaxValue, 0UL)]
    [InlineData(ulong.MaxValue, Bit63 - 1)]
    [InlineData(0UL, ulong.MaxValue)]
    [InlineData(0UL, Bit63 + 1)]
    [InlineData(Bit63 - 2, ulong.MaxValue)]
    public void SubtractionThrowsWhenTheDistanceDoesNotFitInLong(ulong left, ulong right)
    {
        OverflowException ex = Assert.Throws<OverflowException>(() => new Lsn(left) - new Lsn(right));
        Assert.Contains(new Lsn(left).ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Contains(new Lsn(right).ToString(), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AdditionAdvancesAndIsChecked()
    {
        Assert.Equal(new Lsn(5), Lsn.Invalid + 5);
        Assert.Equal(Lsn.Parse("1/0"), Lsn.Parse("0/FFFFFFFF") + 1);
        Assert.Equal(Lsn.MaxValue, Lsn.MaxValue + 0);
        Assert.Equal(Lsn.MaxValue, Lsn.Invalid + ulong.MaxValue);
        Assert.Equal(Lsn.MaxValue, new Lsn(ulong.MaxValue - 7) + 7);
        Assert.Equal(new Lsn(12), new Lsn(5).Add(7));
        Assert.Throws<OverflowException>(() => Lsn.MaxValue + 1);
        Assert.Throws<OverflowException>(() => new Lsn(ulong.MaxValue - 7) + 8);
        Assert.Throws<OverflowException>(() => new Lsn(1) + ulong.MaxValue);

        Lsn start = Lsn.Parse("16/B374D848");
        Assert.Equal(4096L, (start + 4096) - start);
    }

    [Theory]
    [InlineData(0UL, "0/0")]
    [InlineData(1UL, "0/1")]
    [InlineData(0xAUL, "0/A")]
    [InlineData(0x10UL, "0/10")]
    [InlineData(0xFFFF_FFFFUL, "0/FFFFFFFF")]
    [InlineData(0x1_0000_0000UL, "1/0")]
    [InlineData(0xA_0000_000FUL, "A/F")]
    [InlineData(0x16_B374_D848UL, "16/B374D848")]
    [InlineData(0x0F00_0000_00F0_0000UL, "F000000/F00000")]
    [InlineData(0x8000_0000_8000_0000UL, "80000000/80000000")]
    [InlineData(0x1234_5678_9ABC_DEF0UL, "12345678/9ABCDEF0")]
    [InlineData(ulong.MaxValue, "FFFFFFFF/FFFFFFFF")]
    public void FormatsLikePostgres(ulong value, string expected)
    {
        Lsn lsn = new(value);
        Assert.Equal(expected, lsn.ToString());
        Assert.Equal(expected, lsn.ToString(null, null));
        Assert.Equal(expected, lsn.ToString("G", null));
        Assert.Equal(expected, lsn.ToString("g", System.Globalization.CultureInfo.GetCultureInfo("tr-TR")));
        Assert.Equal(expected, $"{lsn}");
        Assert.Equal(expected, string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{lsn}"));

        Span<char> chars = stackalloc char[expected.Length];
        Assert.True(lsn.TryFormat(chars, out int charsWritten, default, null));
        Assert.Equal(expected.Length, charsWritten);
        Assert.Equal(expected, chars.ToString());

        Span<char> shortChars = stackalloc char[expected.Length - 1];
        Assert.False(lsn.TryFormat(shortChars, out charsWritten, default, null));
        Assert.Equal(0, charsWritten);

        byte[] expectedUtf8 = Encoding.UTF8.GetBytes(expected);
        Span<byte> bytes = stackalloc byte[32];
        Assert.True(lsn.TryFormat(bytes, out int bytesWritten, "G", null));
        Assert.Equal(expectedUtf8, bytes[..bytesWritten].ToArray());

        Span<byte> shortBytes = stackalloc byte[expected.Length - 1];
        Assert.False(lsn.TryFormat(shortBytes, out bytesWritten, default, null));
        Assert.Equal(0, bytesWritten);

        Assert.Equal(lsn, Lsn.Parse(expected));
    }

    [Fact]
    public void UnsupportedFormatsThrow()
    {
        Lsn lsn = new(42);
        Assert.Throws<FormatException>(() => lsn.ToString("X", null));
        Assert.Throws<FormatException>(() => lsn.ToString("GG", null));
        Assert.Throws<FormatException>(() => lsn.TryFormat(new char[32], out _, "D", null));
        Assert.Throws<FormatException>(() => lsn.TryFormat(new byte[32], out _, "N", null));
    }

    [Theory]
    [InlineData("0/0", 0UL)]
    [InlineData("0/1", 1UL)]
    [InlineData("1/0", 0x1_0000_0000UL)]
    [InlineData("00000000/00000001", 1UL)]
    [InlineData("00000001/00000000", 0x1_0000_0000UL)]
    [InlineData("000/0000", 0UL)]
    [InlineData("16/B374D848", 0x16_B374_D848UL)]
    [InlineData("16/b374d848", 0x16_B374_D848UL)]
    [InlineData("abcdef/abcdef", 0xAB_CDEF_00AB_CDEFUL)]
    [InlineData("AbCdEf/aBcDeF", 0xAB_CDEF_00AB_CDEFUL)]
    [InlineData("12345678/9abcdef0", 0x1234_5678_9ABC_DEF0UL)]
    [InlineData("FFFFFFFF/FFFFFFFF", ulong.MaxValue)]
    [InlineData("ffffffff/ffffffff", ulong.MaxValue)]
    public void ParsesValidText(string text, ulong expected)
    {
        Lsn lsn = new(expected);
        Assert.Equal(lsn, Lsn.Parse(text));
        Assert.Equal(lsn, Lsn.Parse(text, null));
        Assert.Equal(lsn, Lsn.Parse(text.AsSpan()));
        Assert.Equal(lsn, Lsn.Parse(text.AsSpan(), null));
        Assert.Equal(lsn, Lsn.Parse(Encoding.UTF8.GetBytes(text)));
        Assert.Equal(lsn, Lsn.Parse(Encoding.UTF8.GetBytes(text), null));
        Assert.Equal(lsn, ParseGeneric<Lsn>(text));
        Assert.Equal(lsn, ParseUtf8Generic<Lsn>(Encoding.UTF8.GetBytes(text)));

        Assert.True(Lsn.TryParse(text, out Lsn parsed));
        Assert.Equal(lsn, parsed);
        Assert.True(Lsn.TryParse(text, null, out parsed));
        Assert.Equal(lsn, parsed);
        Assert.True(Lsn.TryParse(text.AsSpan(), out parsed));
        Assert.Equal(lsn, parsed);
        Assert.True(Lsn.TryParse(text.AsSpan(), null, out parsed));
        Assert.Equal(lsn, parsed);
        Assert.True(Lsn.TryParse(Encoding.UTF8.GetBytes(text), out parsed));
        Assert.Equal(lsn, parsed);
        Assert.True(Lsn.TryParse(Encoding.UTF8.GetBytes(text), null, out parsed));
        Assert.Equal(lsn, parsed);
    }

    [Theory]
    [MemberData(nameof(InvalidTexts))]
    public void RejectsInvalidText(string text)
    {
        FormatException ex = Assert.Throws<FormatException>(() => Lsn.Parse(text));
        Assert.Contains($"\"{Escape(text)}\"", ex.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => Lsn.Parse(text, null));
        Assert.Throws<FormatException>(() => Lsn.Parse(text.AsSpan()));
        Assert.Throws<FormatException>(() => Lsn.Parse(text.AsSpan(), null));
        Assert.Throws<FormatException>(() => Lsn.Parse(Encoding.UTF8.GetBytes(text)));
        Assert.Throws<FormatException>(() => Lsn.Parse(Encoding.UTF8.GetBytes(text), null));
        Assert.Throws<FormatException>(() => ParseGeneric<Lsn>(text));

        Assert.False(Lsn.TryParse(text, out Lsn parsed));
        Assert.Equal(Lsn.Invalid, parsed);
        Assert.False(Lsn.TryParse(text, null, out parsed));
        Assert.Equal(Lsn.Invalid, parsed);
        Assert.False(Lsn.TryParse(text.AsSpan(), out parsed));
        Assert.Equal(Lsn.Invalid, parsed);
        Assert.False(Lsn.TryParse(text.AsSpan(), null, out parsed));
        Assert.Equal(Lsn.Invalid, parsed);
        Assert.False(Lsn.TryParse(Encoding.UTF8.GetBytes(text), out parsed));
        Assert.Equal(Lsn.Invalid, parsed);
        Assert.False(Lsn.TryParse(Encoding.UTF8.GetBytes(text), null, out parsed));
        Assert.Equal(Lsn.Invalid, parsed);
    }

    [Fact]
    public void NullIsRejected()
    {
        Assert.Throws<ArgumentNullException>(() => Lsn.Parse((string)null!));
        Assert.Throws<ArgumentNullException>(() => Lsn.Parse((string)null!, null));
        Assert.False(Lsn.TryParse((string?)null, out Lsn parsed));
        Assert.Equal(Lsn.Invalid, parsed);
        Assert.False(Lsn.TryParse((string?)null, null, out _));
    }

    [Fact]
    public void InvalidUtf8IsRejected()
    {
        byte[][] inputs =
        [
            [(byte)'1', (byte)'/', 0xFF],
            [0xC0, (byte)'/', (byte)'0'],
            [(byte)'1', (byte)'/', (byte)'0', 0x80],
            [0xEF, 0xBC, 0x91, (byte)'/', (byte)'0'],
        ];

        foreach (byte[] input in inputs)
        {
            Assert.False(Lsn.TryParse(input, out _), Convert.ToHexString(input));
            Assert.Throws<FormatException>(() => Lsn.Parse(input));
        }
    }

    [Fact]
    public void FormatExceptionMessageIsTruncatedForLongInput()
    {
        string text = new('7', 10_000);
        FormatException ex = Assert.Throws<FormatException>(() => Lsn.Parse(text));
        Assert.Contains(new string('7', 64), ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(new string('7', 65), ex.Message, StringComparison.Ordinal);
        Assert.Contains("10000 characters", ex.Message, StringComparison.Ordinal);
        Assert.True(ex.Message.Length < 400, ex.Message);
    }

    [Fact]
    public void RandomValuesRoundTrip()
    {
        const int seed = 1234;
        Random random = new(seed);
        Span<char> chars = stackalloc char[17];
        Span<byte> bytes = stackalloc byte[17];
        for (int i = 0; i < 20_000; i++)
        {
            ulong upper = (ulong)(uint)random.Next(int.MinValue, int.MaxValue) >> random.Next(0, 33);
            ulong lower = (ulong)(uint)random.Next(int.MinValue, int.MaxValue) >> random.Next(0, 33);
            Lsn lsn = new((upper << 32) | lower);
            string text = lsn.ToString();
            string expected = $"{upper:X}/{lower:X}";
            Assert.True(expected == text, $"seed {seed}, value 0x{lsn.Value:X16}: expected {expected}, got {text}");
            Assert.True(lsn == Lsn.Parse(text), $"seed {seed}: {text}");
            Assert.True(lsn == Lsn.Parse(text.ToLowerInvariant()), $"seed {seed}: {text}");

            Assert.True(lsn.TryFormat(chars, out int charsWritten, default, null));
            Assert.True(text.AsSpan().SequenceEqual(chars[..charsWritten]), $"seed {seed}: {text}");
            Assert.True(lsn.TryFormat(bytes, out int bytesWritten, default, null));
            Assert.True(Encoding.ASCII.GetBytes(text).AsSpan().SequenceEqual(bytes[..bytesWritten]), $"seed {seed}: {text}");
            Assert.True(Lsn.TryParse(bytes[..bytesWritten], out Lsn fromUtf8) && fromUtf8 == lsn, $"seed {seed}: {text}");
        }
    }

    [Fact]
    public void SpanParseAndFormatDoNotAllocate()
    {
        const string text = "16/B374D848";
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        char[] chars = new char[17];
        byte[] bytes = new byte[17];

        ulong checksum = 0;
        for (int i = 0; i < 1_000; i++)
        {
            checksum += Exercise(text, utf8, chars, bytes);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100_000; i++)
        {
            checksum += Exercise(text, utf8, chars, bytes);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0L, allocated);
        Assert.NotEqual(0UL, checksum);

        static ulong Exercise(ReadOnlySpan<char> text, ReadOnlySpan<byte> utf8, Span<char> chars, Span<byte> bytes)
        {
            Lsn lsn = Lsn.Parse(text);
            ulong sum = lsn.Value;
            sum += Lsn.Parse(text, null).Value;
            sum += Lsn.TryParse(text, out Lsn parsed) ? parsed.Value : 0;
            sum += Lsn.Parse(utf8).Value;
            sum += Lsn.TryParse(utf8, out parsed) ? parsed.Value : 0;
            sum += Lsn.TryParse(text[1..], out parsed) ? 1UL : 0;
            sum += Lsn.TryParse(utf8[..^1], out parsed) ? 1UL : 0;
            sum += lsn.TryFormat(chars, out int written, default, null) ? (ulong)written : 0;
            sum += lsn.TryFormat(bytes, out written, "G", null) ? (ulong)written : 0;
            sum += Lsn.MaxValue.TryFormat(chars, out written, default, null) ? (ulong)written : 0;
            return sum;
        }
    }

    private static T ParseGeneric<T>(string text)
        where T : ISpanParsable<T> => T.Parse(text.AsSpan(), null);

    private static T ParseUtf8Generic<T>(byte[] utf8)
        where T : IUtf8SpanParsable<T> => T.Parse(utf8, null);

    /// <summary>How the FormatException message is expected to render the input.</summary>
    private static string Escape(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal)
            .Replace("\t", "\\t", StringComparison.Ordinal)
            .Replace("\0", "\\u0000", StringComparison.Ordinal);
}
