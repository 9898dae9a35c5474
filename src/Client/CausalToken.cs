using System.Buffers.Binary;
using System.Globalization;

namespace OrleansLsn.Client;

/// <summary>
/// What a user has written: the highest LSN of their writes and the primary that wrote it. One LSN, not a vector; a
/// token from another database cluster or from an earlier timeline of this one is never taken for a position on the
/// current one.
/// </summary>
public readonly record struct CausalToken(Lsn Lsn, PrimaryIdentity Primary)
{
    private const byte Version = 1;

    /// <summary>The size of <see cref="ToBytes"/>: a version byte, the LSN, the system identifier, the timeline.</summary>
    internal const int Size = 1 + 8 + 8 + 4;

    /// <summary>The token of one write.</summary>
    public static CausalToken From(CommittedWrite write) => new(write.Lsn, write.Primary);

    /// <summary>
    /// The later of two tokens: on another primary (another system identifier) the newer one, <paramref name="next"/>,
    /// wins, since positions of the old cluster mean nothing on the new one; on the same primary the later timeline,
    /// then the higher LSN.
    /// </summary>
    public static CausalToken Merge(CausalToken? held, CausalToken next)
    {
        return held is not { } current || CommittedWrite.Supersedes(next.Lsn, next.Primary, current.Lsn, current.Primary) ? next : current;
    }

    internal byte[] ToBytes()
    {
        var bytes = new byte[Size];
        bytes[0] = Version;
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(1), Lsn.Value);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(9), Primary.SystemIdentifier);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(17), Primary.Timeline);
        return bytes;
    }

    /// <summary>Reads what <see cref="ToBytes"/> wrote; null with the problem otherwise.</summary>
    internal static CausalToken? FromBytes(ReadOnlySpan<byte> bytes, out string? problem)
    {
        if (bytes.Length != Size || bytes[0] != Version)
        {
            problem = bytes.Length == Size ? $"unknown token version {bytes[0]}" : $"{bytes.Length} bytes where a token has {Size}";
            return null;
        }

        var lsn = new Lsn(BinaryPrimitives.ReadUInt64BigEndian(bytes[1..]));
        uint timeline = BinaryPrimitives.ReadUInt32BigEndian(bytes[17..]);
        if (!lsn.IsValid || timeline == 0)
        {
            problem = "LSN 0/0 or timeline 0";
            return null;
        }

        problem = null;
        return new CausalToken(lsn, new PrimaryIdentity(BinaryPrimitives.ReadUInt64BigEndian(bytes[9..]), timeline));
    }

    /// <summary>
    /// The token as text, <c>LSN:system identifier:timeline</c> (for example <c>16/B374D848:7290912461587265371:1</c>),
    /// unprotected: for Orleans' <c>RequestContext</c> inside the cluster (see <see cref="CausalTokenContext"/>). Across a
    /// trust boundary (a cookie, a header, a queue) use the protected form of OrleansLsn.AspNetCore.
    /// </summary>
    public string Format() => string.Create(CultureInfo.InvariantCulture, $"{Lsn}:{Primary.SystemIdentifier}:{Primary.Timeline}");

    /// <summary>Reads what <see cref="Format"/> wrote.</summary>
    public static bool TryParse(string? text, out CausalToken token)
    {
        token = default;
        string[] parts = text?.Split(':') ?? [];
        if (parts.Length != 3
            || !Lsn.TryParse(parts[0], out Lsn lsn) || !lsn.IsValid
            || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong system)
            || !uint.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint timeline) || timeline == 0)
        {
            return false;
        }

        token = new CausalToken(lsn, new PrimaryIdentity(system, timeline));
        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Lsn} ({Primary})";
}
