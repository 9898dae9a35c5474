using System.Globalization;
using System.Text;

namespace OrleansLsn.Replication.Snapshot;

/// <summary>
/// A PostgreSQL MVCC snapshot as <c>pg_current_snapshot()</c> gives it (type <c>pg_snapshot</c>, text form
/// <c>xmin:xmax:xip,xip,...</c> with 64-bit transaction ids, <c>xid8</c>), and the cut it defines between a table copy
/// read in that snapshot and the change stream of a logical replication slot.
/// </summary>
/// <remarks>
/// <para>
/// Invariants (checked by <see cref="Parse"/>, as PostgreSQL's own <c>pg_snapshot_in</c> checks them):
/// <c>0 &lt; Xmin</c>, <c>0 &lt; Xmax</c>, and <see cref="InProgress"/> is strictly ascending with every entry in
/// <c>[Xmin, Xmax)</c> (duplicates in the text are dropped, as PostgreSQL drops them). Unlike <c>pg_snapshot_in</c>,
/// Xmax below Xmin is accepted (with nothing in progress): <c>pg_current_snapshot()</c> gives such a snapshot in a
/// transaction that imported the one a new logical slot exported (seen on PostgreSQL 15: <c>808:807:</c>).
/// PostgreSQL's visibility test looks at Xmin first, and so does <see cref="IsVisible"/>: every id below Xmin is
/// visible, every other one is not.
/// </para>
/// <para>
/// The cut: for a committed transaction, <see cref="IsVisible"/> is true exactly when its effects are in the snapshot.
/// A change stream joined to a copy read in this snapshot must therefore skip every committed transaction that is
/// visible (<see cref="SkipInStream"/>) and deliver every other one: each committed transaction is then in the copy or
/// in the stream after it, never both and never neither.
/// </para>
/// </remarks>
internal sealed class PgSnapshot
{
    private const ulong FirstNormalXid = 3;
    private readonly ulong[] _inProgress;

    private PgSnapshot(ulong xmin, ulong xmax, ulong[] inProgress)
    {
        Xmin = xmin;
        Xmax = xmax;
        _inProgress = inProgress;
    }

    /// <summary>The oldest transaction still running when the snapshot was taken; every id below it is finished.</summary>
    public ulong Xmin { get; }

    /// <summary>
    /// One past the newest finished transaction; every id at or above it was unfinished (invisible). Can be below
    /// <see cref="Xmin"/> (see the remarks), where Xmin decides.
    /// </summary>
    public ulong Xmax { get; }

    /// <summary>The transactions in <c>[Xmin, Xmax)</c> that were still running (invisible), ascending.</summary>
    public IReadOnlyList<ulong> InProgress => _inProgress;

    /// <summary>Parses <c>pg_snapshot</c>'s text form, e.g. <c>100:104:100,102</c> or <c>100:100:</c>.</summary>
    /// <exception cref="FormatException">The text is not a valid snapshot; the message says what is wrong.</exception>
    public static PgSnapshot Parse(string text)
    {
        string? problem = TryParse(text, out PgSnapshot? snapshot);
        return problem is null ? snapshot! : throw new FormatException(problem);
    }

    /// <summary>Parses like <see cref="Parse"/>; returns <see langword="null"/> when valid, else the reason.</summary>
    public static string? TryParse(string? text, out PgSnapshot? snapshot)
    {
        snapshot = null;
        if (string.IsNullOrEmpty(text))
        {
            return "a snapshot must not be empty; expected xmin:xmax:xip,...";
        }

        string shown = text.Length <= 80 ? text : text[..80] + "…";
        string[] parts = text.Split(':');
        if (parts.Length != 3)
        {
            return $"snapshot \"{shown}\" has {parts.Length} ':'-separated parts; expected xmin:xmax:xip,...";
        }

        if (!TryParseXid(parts[0], out ulong xmin) || xmin == 0)
        {
            return $"snapshot \"{shown}\": xmin \"{parts[0]}\" is not a transaction id (a decimal number above 0)";
        }

        if (!TryParseXid(parts[1], out ulong xmax) || xmax == 0)
        {
            return $"snapshot \"{shown}\": xmax \"{parts[1]}\" is not a transaction id (a decimal number above 0)";
        }

        var inProgress = new List<ulong>();
        if (parts[2].Length > 0)
        {
            foreach (string item in parts[2].Split(','))
            {
                if (!TryParseXid(item, out ulong xid))
                {
                    return $"snapshot \"{shown}\": in-progress entry \"{item}\" is not a transaction id";
                }

                if (xid < xmin || xid >= xmax)
                {
                    return $"snapshot \"{shown}\": in-progress transaction {xid} is outside [xmin {xmin}, xmax {xmax})";
                }

                if (inProgress.Count > 0 && xid < inProgress[^1])
                {
                    return $"snapshot \"{shown}\": in-progress transactions are not in ascending order ({inProgress[^1]} then {xid})";
                }

                if (inProgress.Count == 0 || xid != inProgress[^1])
                {
                    inProgress.Add(xid);
                }
            }
        }

        snapshot = new PgSnapshot(xmin, xmax, [.. inProgress]);
        return null;
    }

    /// <summary>
    /// Whether the transaction <paramref name="xid8"/> is visible in this snapshot: PostgreSQL's
    /// <c>pg_visible_in_snapshot</c>. True below <see cref="Xmin"/>; otherwise false at or above <see cref="Xmax"/>; in between,
    /// true unless it is in <see cref="InProgress"/>. For a committed transaction: true exactly when its effects are in
    /// the snapshot.
    /// </summary>
    public bool IsVisible(ulong xid8)
    {
        if (xid8 < Xmin)
        {
            return true;
        }

        if (xid8 >= Xmax)
        {
            return false;
        }

        return Array.BinarySearch(_inProgress, xid8) < 0;
    }

    /// <summary>
    /// The 64-bit transaction id (<c>xid8</c>, epoch × 2^32 + xid) of a 32-bit <paramref name="xid32"/> that pgoutput
    /// sent for a transaction of the stream this snapshot is joined to.
    /// </summary>
    /// <remarks>
    /// pgoutput's BEGIN carries only the low 32 bits. The full id is the one with these low bits nearest to
    /// <see cref="Xmax"/>: within [Xmax − 2^31, Xmax + 2^31). That is the right one because PostgreSQL never lets two
    /// transaction ids that are both still of interest lie 2^31 or more apart (it stops assigning ids before the
    /// counter could wrap past the oldest unfrozen one, and the slot's <c>catalog_xmin</c> and the snapshot's own
    /// transaction hold that horizon back). A transaction streamed after the snapshot was taken either was running
    /// then (an id in [Xmin, Xmax), at most 2^31 below Xmax) or got its id later (above Xmax, at most 2^31 above it,
    /// since the stream reaches it before the counter runs 2^31 further); a transaction that committed before the
    /// snapshot and is still in the stream's backlog is at most 2^31 below Xmax for the same reason. This is
    /// PostgreSQL's own <c>FullTransactionIdFromAllowableAt</c> arithmetic: Xmax plus the signed 32-bit distance.
    /// In epoch 0 there is no earlier epoch, so a distance that would reach below 0 means the next epoch.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="xid32"/> is a special id (0, 1, 2), never a transaction's.</exception>
    public ulong Widen(uint xid32)
    {
        if (xid32 < FirstNormalXid)
        {
            throw new ArgumentOutOfRangeException(nameof(xid32), xid32, "0, 1 and 2 are PostgreSQL's special transaction ids, never a streamed transaction's");
        }

        int distance = unchecked((int)(xid32 - (uint)Xmax));
        if (distance < 0 && (ulong)(-(long)distance) > Xmax)
        {
            return Xmax + (ulong)(uint)distance;
        }

        return unchecked((ulong)((long)Xmax + distance));
    }

    /// <summary>
    /// Whether a streamed transaction (its 32-bit id from pgoutput's BEGIN, i.e. <see cref="ChangeBatch.Xid"/>) must be
    /// skipped because the copy read in this snapshot already has its effects: <c>IsVisible(Widen(xid32))</c>.
    /// Apply it to every streamed transaction, not only until the first invisible one: commit order in the WAL and the
    /// order in which transactions become visible to snapshots can differ, so a visible transaction can follow an
    /// invisible one in the stream.
    /// </summary>
    public bool SkipInStream(uint xid32) => IsVisible(Widen(xid32));

    /// <summary>The text form, as PostgreSQL prints it (<c>xmin:xmax:xip,...</c>).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Xmin}:{Xmax}:");
        for (int i = 0; i < _inProgress.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(_inProgress[i].ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    private static bool TryParseXid(string s, out ulong value) =>
        ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
