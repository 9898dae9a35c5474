using OrleansLsn.Replication.Snapshot;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary><see cref="PgSnapshot"/>: pg_snapshot's text form, PostgreSQL's visibility rule, and widening pgoutput's 32-bit xids.</summary>
public sealed class PgSnapshotTests
{
    private const ulong Epoch = 1UL << 32;

    [Theory]
    [InlineData("100:100:", 100UL, 100UL, new ulong[0])]
    [InlineData("100:104:100,102", 100UL, 104UL, new ulong[] { 100, 102 })]
    [InlineData("100:104:100,100,102", 100UL, 104UL, new ulong[] { 100, 102 })]
    [InlineData("8589934595:8589934600:8589934597", 8589934595UL, 8589934600UL, new ulong[] { 8589934597 })]
    public void Parse_ReadsXminXmaxAndInProgress(string text, ulong xmin, ulong xmax, ulong[] xip)
    {
        PgSnapshot snapshot = PgSnapshot.Parse(text);
        Assert.Equal((xmin, xmax), (snapshot.Xmin, snapshot.Xmax));
        Assert.Equal(xip, snapshot.InProgress);
        Assert.Equal(PgSnapshot.Parse(snapshot.ToString()).ToString(), snapshot.ToString());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("100:104", "2 ':'-separated parts")]
    [InlineData("100:104:1:2", "4 ':'-separated parts")]
    [InlineData("x:104:", "xmin \"x\"")]
    [InlineData("0:104:", "xmin \"0\"")]
    [InlineData("-1:104:", "xmin \"-1\"")]
    [InlineData(" 100:104:", "xmin \" 100\"")]
    [InlineData("100::", "xmax \"\"")]
    [InlineData("100:18446744073709551616:", "xmax \"18446744073709551616\"")]
    [InlineData("104:100:101", "101 is outside [xmin 104, xmax 100)")]
    [InlineData("100:104:101,", "entry \"\"")]
    [InlineData("100:104:1a", "entry \"1a\"")]
    [InlineData("100:104:99", "99 is outside [xmin 100, xmax 104)")]
    [InlineData("100:104:104", "104 is outside")]
    [InlineData("100:104:102,101", "not in ascending order (102 then 101)")]
    public void Parse_Malformed_NamesTheProblem(string text, string problem)
    {
        FormatException e = Assert.Throws<FormatException>(() => PgSnapshot.Parse(text));
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void XmaxBelowXmin_AsPgCurrentSnapshotGivesItInASlotsExportedSnapshot_IsAcceptedAndXminDecides()
    {
        // Seen on PostgreSQL 15 in a transaction that imported a new slot's exported snapshot.
        PgSnapshot snapshot = PgSnapshot.Parse("808:807:");
        Assert.Equal((808UL, 807UL), (snapshot.Xmin, snapshot.Xmax));
        Assert.Equal("808:807:", snapshot.ToString());
        Assert.True(snapshot.IsVisible(806));
        Assert.True(snapshot.IsVisible(807));
        Assert.False(snapshot.IsVisible(808));
        Assert.False(snapshot.IsVisible(809));
        Assert.True(snapshot.SkipInStream(807));
        Assert.False(snapshot.SkipInStream(808));
    }

    [Fact]
    public void IsVisible_FollowsPgVisibleInSnapshot()
    {
        PgSnapshot snapshot = PgSnapshot.Parse("100:105:100,103");
        Assert.True(snapshot.IsVisible(3));
        Assert.True(snapshot.IsVisible(99));
        Assert.False(snapshot.IsVisible(100));
        Assert.True(snapshot.IsVisible(101));
        Assert.True(snapshot.IsVisible(102));
        Assert.False(snapshot.IsVisible(103));
        Assert.True(snapshot.IsVisible(104));
        Assert.False(snapshot.IsVisible(105));
        Assert.False(snapshot.IsVisible(ulong.MaxValue));
    }

    [Fact]
    public void Widen_SameEpoch_AddsTheEpoch()
    {
        PgSnapshot snapshot = PgSnapshot.Parse($"{(5 * Epoch) + 1000}:{(5 * Epoch) + 1010}:");
        Assert.Equal((5 * Epoch) + 1005, snapshot.Widen(1005));
        Assert.Equal((5 * Epoch) + 20, snapshot.Widen(20));
        Assert.Equal((5 * Epoch) + 5000000, snapshot.Widen(5000000));
    }

    [Fact]
    public void Widen_AcrossTheWrap_AfterTheSnapshot_IsTheNextEpoch()
    {
        // xmax just below the 32-bit wrap; transactions that got their ids after it wrapped to small numbers.
        ulong xmax = (7 * Epoch) + uint.MaxValue - 10;
        PgSnapshot snapshot = PgSnapshot.Parse($"{xmax - 50}:{xmax}:{xmax - 20}");
        Assert.Equal((8 * Epoch) + 3, snapshot.Widen(3));
        Assert.Equal((8 * Epoch) + 100000, snapshot.Widen(100000));
        Assert.Equal(xmax + 5, snapshot.Widen(uint.MaxValue - 5));
        Assert.Equal(xmax - 20, snapshot.Widen(uint.MaxValue - 30));
        Assert.False(snapshot.SkipInStream(3));
        Assert.False(snapshot.SkipInStream(uint.MaxValue - 30));
        Assert.True(snapshot.SkipInStream(uint.MaxValue - 31));
        Assert.True(snapshot.SkipInStream(uint.MaxValue - 100));
    }

    [Fact]
    public void Widen_AcrossTheWrap_BeforeTheSnapshot_IsThePreviousEpoch()
    {
        // xmax just past the wrap; transactions still running at the snapshot got their ids before it.
        ulong xmax = (8 * Epoch) + 40;
        PgSnapshot snapshot = PgSnapshot.Parse($"{(7 * Epoch) + uint.MaxValue - 9}:{xmax}:{(7 * Epoch) + uint.MaxValue - 9},{(8 * Epoch) + 7}");
        Assert.Equal((7 * Epoch) + uint.MaxValue - 9, snapshot.Widen(uint.MaxValue - 9));
        Assert.Equal((7 * Epoch) + uint.MaxValue, snapshot.Widen(uint.MaxValue));
        Assert.Equal((8 * Epoch) + 7, snapshot.Widen(7));
        Assert.Equal((8 * Epoch) + 41, snapshot.Widen(41));
        Assert.False(snapshot.SkipInStream(uint.MaxValue - 9));
        Assert.True(snapshot.SkipInStream(uint.MaxValue - 8));
        Assert.True(snapshot.SkipInStream(uint.MaxValue - 1000));
        Assert.False(snapshot.SkipInStream(7));
        Assert.True(snapshot.SkipInStream(8));
        Assert.False(snapshot.SkipInStream(40));
    }

    [Fact]
    public void Widen_ChoosesTheIdWithin2Pow31OfXmax()
    {
        ulong xmax = (3 * Epoch) + 1000;
        PgSnapshot snapshot = PgSnapshot.Parse($"{xmax}:{xmax}:");
        uint justAhead = 1000 + (uint)int.MaxValue;
        Assert.Equal(xmax + int.MaxValue, snapshot.Widen(justAhead));
        Assert.Equal(xmax - (1UL << 31), snapshot.Widen(justAhead + 1));
    }

    [Fact]
    public void Widen_InEpochZero_NeverGoesBelowZero()
    {
        PgSnapshot snapshot = PgSnapshot.Parse("700:750:");
        Assert.Equal(740UL, snapshot.Widen(740));
        Assert.Equal(3UL, snapshot.Widen(3));
        // No epoch before 0: an id "2^31 behind" can only be ahead.
        Assert.Equal((ulong)uint.MaxValue, snapshot.Widen(uint.MaxValue));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1u)]
    [InlineData(2u)]
    public void Widen_SpecialXid_IsRefused(uint xid)
    {
        PgSnapshot snapshot = PgSnapshot.Parse("700:750:");
        Assert.Throws<ArgumentOutOfRangeException>(() => snapshot.Widen(xid));
    }
}
