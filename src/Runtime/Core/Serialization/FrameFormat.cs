namespace OrleansLsn.Runtime.Serialization;

/// <summary>Sizes of the frame format: a little-endian 32-bit length, then that many bytes.</summary>
internal static class FrameFormat
{
    public const int LengthPrefixSize = 4;

    /// <summary>The smallest legal frame body: one kind byte.</summary>
    public const int MinimumFrameLength = 1;
}
