using System.Globalization;

namespace OrleansLsn.Bench.Common;

/// <summary>Invariant-culture formatting for the results table.</summary>
internal static class Format
{
    public static string Ms(double ms) => ms.ToString("0.000", CultureInfo.InvariantCulture) + " ms";

    /// <summary>Microseconds, with one decimal.</summary>
    public static string Us(double us) => us.ToString("#,0.0", CultureInfo.InvariantCulture) + " µs";

    public static string Count(double value) => value.ToString("#,0", CultureInfo.InvariantCulture);

    public static string PerSecond(double value) => Count(value) + "/s";

    public static string Bytes(double value) => value.ToString("0.0", CultureInfo.InvariantCulture) + " B";

    public static string Ratio(double ours, double anchor) =>
        anchor > 0 ? (ours / anchor).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "—";

    public static string Number(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
