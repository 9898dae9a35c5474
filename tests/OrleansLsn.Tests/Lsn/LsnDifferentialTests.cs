using System.Text;
using Npgsql;
using NpgsqlTypes;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.LsnType;

/// <summary>
/// Differential tests: <see cref="Lsn.TryParse(string?, out Lsn)"/> and <see cref="Lsn.ToString()"/> against the real
/// server's <c>pg_lsn</c> input and output functions (<c>select $1::pg_lsn::text</c>).
/// </summary>
public sealed class LsnDifferentialTests(PostgresFixture fixture)
{
    private const int Seed = 20_250_611;
    private const int RandomCount = 2_000;
    private const string RandomAlphabet = "0123456789abcdefABCDEFG/ -+x";
    private const string HexDigits = "0123456789abcdefABCDEF";
    private const int MaxReportedMismatches = 25;

    public static TheoryData<string> Corpus => new(
        // Accepted edges.
        "0/0",
        "FFFFFFFF/FFFFFFFF",
        "ffffffff/ffffffff",
        "0/1",
        "1/0",
        "00000000/00000001",
        "00000001/00000000",
        "000/0000",
        "16/B374D848",
        "abcdef/abcdef",
        "AbCdEf/aBcDeF",
        "12345678/9abcdef0",
        "80000000/80000000",

        // Nine digits, even if only leading zeros: the length check comes before the value.
        "0000000001/0",
        "000000000/0",
        "0/000000000",
        "0/000000001",
        "100000000/0",
        "0/100000000",

        // Malformed.
        string.Empty,
        "0",
        "/",
        "0/",
        "/0",
        "G/0",
        "0/G",
        "-1/0",
        "+1/0",
        "0/-1",
        "0/+1",
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
        "\r\n1/0",
        "\uFF11/0",
        "0/\uFF11",
        "\u0661/0",
        "1.0/0",
        "1\\0",
        "1,0",
        "1:0");

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task CorpusParsesLikeTheServer(string text)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using NpgsqlConnection connection = new(fixture.PrimaryConnectionString);
        await connection.OpenAsync(ct);
        await using NpgsqlCommand command = CreateCastCommand(connection);

        Outcome server = await ServerCastAsync(command, text, ct);
        Outcome ours = OurCast(text);

        Assert.True(server.Text == ours.Text, Describe(text, server, ours));
    }

    [Fact]
    public async Task RandomValuesFormatLikeTheServer()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        Random random = new(Seed);
        Lsn[] values = new Lsn[RandomCount];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = RandomLsn(random);
        }

        values[0] = Lsn.Invalid;
        values[1] = Lsn.MaxValue;
        string[] ourTexts = Array.ConvertAll(values, value => value.ToString());

        await using NpgsqlConnection connection = new(fixture.PrimaryConnectionString);
        await connection.OpenAsync(ct);
        await using NpgsqlCommand command = new(
            "select t.x::pg_lsn::text from unnest($1::text[]) with ordinality as t(x, n) order by t.n",
            connection);
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = ourTexts });

        List<string> serverTexts = new(RandomCount);
        await using (NpgsqlDataReader reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                serverTexts.Add(reader.GetString(0));
            }
        }

        Assert.Equal(RandomCount, serverTexts.Count);

        List<string> mismatches = [];
        for (int i = 0; i < RandomCount; i++)
        {
            bool reparsed = Lsn.TryParse(serverTexts[i], out Lsn back);
            if (serverTexts[i] != ourTexts[i] || !reparsed || back != values[i])
            {
                mismatches.Add(
                    $"value 0x{values[i].Value:X16}: we printed \"{ourTexts[i]}\", the server printed \"{serverTexts[i]}\", "
                    + (reparsed ? $"which we parse as 0x{back.Value:X16}" : "which we reject"));
            }
        }

        AssertNoMismatches(mismatches, RandomCount, "random values");
    }

    [Fact]
    public async Task RandomStringsAreAcceptedAndRejectedLikeTheServer()
    {
        Random random = new(Seed);
        string[] texts = new string[RandomCount];
        for (int i = 0; i < texts.Length; i++)
        {
            texts[i] = RandomString(random, RandomAlphabet, random.Next(0, 21));
        }

        int accepted = await CompareWithServerAsync(texts, "random strings");

        // A sanity check that the generator exercises both sides, not part of the rule.
        Assert.True(accepted >= 10, $"seed {Seed}: only {accepted} of {RandomCount} random strings were valid LSNs");
    }

    [Fact]
    public async Task RandomNearlyValidStringsAreAcceptedAndRejectedLikeTheServer()
    {
        Random random = new(Seed + 1);
        string[] texts = new string[RandomCount];
        for (int i = 0; i < texts.Length; i++)
        {
            texts[i] = RandomNearlyValidString(random);
        }

        int accepted = await CompareWithServerAsync(texts, "nearly valid strings");

        Assert.True(
            accepted is > RandomCount / 10 and < RandomCount * 9 / 10,
            $"seed {Seed + 1}: {accepted} of {RandomCount} nearly valid strings were valid LSNs");
    }

    /// <summary>One round trip per string on one connection; returns how many the server accepted.</summary>
    private async Task<int> CompareWithServerAsync(string[] texts, string what)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using NpgsqlConnection connection = new(fixture.PrimaryConnectionString);
        await connection.OpenAsync(ct);
        await using NpgsqlCommand command = CreateCastCommand(connection);
        await command.PrepareAsync(ct);

        int accepted = 0;
        List<string> mismatches = [];
        foreach (string text in texts)
        {
            Outcome server = await ServerCastAsync(command, text, ct);
            Outcome ours = OurCast(text);
            if (server.Text != ours.Text)
            {
                mismatches.Add(Describe(text, server, ours));
            }

            if (server.Text is not null)
            {
                accepted++;
            }
        }

        AssertNoMismatches(mismatches, texts.Length, what);
        return accepted;
    }

    private static NpgsqlCommand CreateCastCommand(NpgsqlConnection connection)
    {
        NpgsqlCommand command = new("select $1::pg_lsn::text", connection);
        command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = string.Empty });
        return command;
    }

    /// <summary>The server's verdict: its output text, or <see langword="null"/> and its error for invalid input (22P02).</summary>
    private static async Task<Outcome> ServerCastAsync(NpgsqlCommand command, string text, CancellationToken ct)
    {
        command.Parameters[0].Value = text;
        try
        {
            object? result = await command.ExecuteScalarAsync(ct);
            return new Outcome(result as string, $"accepted, printed \"{result}\"");
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InvalidTextRepresentation)
        {
            return new Outcome(null, $"rejected ({ex.SqlState}: {ex.MessageText})");
        }
    }

    /// <summary>Our verdict; the string and UTF-8 parsers must agree with each other too.</summary>
    private static Outcome OurCast(string text)
    {
        bool fromString = Lsn.TryParse(text, out Lsn lsn);
        bool fromUtf8 = Lsn.TryParse(Encoding.UTF8.GetBytes(text), out Lsn lsnFromUtf8);
        if (fromString != fromUtf8 || lsn != lsnFromUtf8)
        {
            return new Outcome("<inconsistent>", $"inconsistent: string parser {fromString} {lsn}, UTF-8 parser {fromUtf8} {lsnFromUtf8}");
        }

        return fromString
            ? new Outcome(lsn.ToString(), $"accepted, printed \"{lsn}\"")
            : new Outcome(null, "rejected");
    }

    private static string Describe(string text, Outcome server, Outcome ours) =>
        $"input \"{Escape(text)}\": server {server.Detail}; we {ours.Detail}";

    private static void AssertNoMismatches(List<string> mismatches, int total, string what) =>
        Assert.True(
            mismatches.Count == 0,
            $"seed {Seed}: {mismatches.Count} of {total} {what} differ from the server"
            + $" (first {Math.Min(mismatches.Count, MaxReportedMismatches)} shown):{Environment.NewLine}"
            + string.Join(Environment.NewLine, mismatches.Take(MaxReportedMismatches)));

    /// <summary>A value whose halves have random bit lengths, so short and long components are both common.</summary>
    private static Lsn RandomLsn(Random random)
    {
        ulong upper = RandomUInt32(random) >> random.Next(0, 33);
        ulong lower = RandomUInt32(random) >> random.Next(0, 33);
        return new Lsn((upper << 32) | lower);
    }

    private static ulong RandomUInt32(Random random) => (ulong)random.NextInt64(0, 1L << 32);

    private static string RandomString(Random random, string alphabet, int length)
    {
        StringBuilder builder = new(length);
        for (int i = 0; i < length; i++)
        {
            builder.Append(alphabet[random.Next(alphabet.Length)]);
        }

        return builder.ToString();
    }

    /// <summary>Hex runs of 0 to 10 digits around a separator that is usually '/', sometimes with junk around it.</summary>
    private static string RandomNearlyValidString(Random random)
    {
        StringBuilder builder = new();
        if (random.Next(10) == 0)
        {
            builder.Append(RandomAlphabet[random.Next(RandomAlphabet.Length)]);
        }

        builder.Append(RandomString(random, HexDigits, random.Next(0, 11)));
        builder.Append(random.Next(10) == 0 ? RandomAlphabet[random.Next(RandomAlphabet.Length)] : '/');
        builder.Append(RandomString(random, HexDigits, random.Next(0, 11)));
        if (random.Next(10) == 0)
        {
            builder.Append(RandomAlphabet[random.Next(RandomAlphabet.Length)]);
        }

        return builder.ToString();
    }

    private static string Escape(string text)
    {
        StringBuilder builder = new(text.Length);
        foreach (char c in text)
        {
            if (c is '"' or '\\')
            {
                builder.Append('\\').Append(c);
            }
            else if (c < ' ' || c > '~')
            {
                builder.Append($"\\u{(int)c:X4}");
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }

    /// <summary>A verdict: <paramref name="Text"/> is the printed LSN, or <see langword="null"/> when rejected.</summary>
    private readonly record struct Outcome(string? Text, string Detail);
}
