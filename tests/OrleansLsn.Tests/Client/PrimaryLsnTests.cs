using OrleansLsn.Client;
using Xunit;

namespace OrleansLsn.Tests.Client;

public sealed class PrimaryLsnTests
{
    private const ulong Page = 8192;
    private const ulong Segment = 16 * 1024 * 1024;

    [Theory]
    [InlineData(0x3092018UL, 0x3092000UL)] // just past a short page header
    [InlineData(0x4000028UL, 0x4000000UL)] // just past the long header at a segment start
    [InlineData(0x3092000UL, 0x3092000UL)] // already on a boundary
    [InlineData(0x3092019UL, 0x3092019UL)] // inside a page
    [InlineData(0x4000018UL, 0x4000018UL)] // offset 24 of a segment's first page is inside the long header's page
    [InlineData(0x4002028UL, 0x4002028UL)] // offset 40 of a later page is ordinary data
    public void SkipPageHeader_MovesOnlyHeaderPositionsToTheBoundary(ulong insert, ulong expected) =>
        Assert.Equal(new Lsn(expected), PrimaryLsn.SkipPageHeader(new Lsn(insert), Page, Segment));
}
