using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace OrleansLsn.Database;

/// <summary>
/// PostgreSQL's SCRAM-SHA-256 password verifier (<c>SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey</c>, RFC 5802 and
/// RFC 7677), computed here so that <c>CREATE ROLE ... PASSWORD '&lt;verifier&gt;'</c> never sends the password itself:
/// PostgreSQL stores a verifier it is given as it is, and neither the server nor its statement log ever sees the
/// plaintext.
/// </summary>
public static class ScramVerifier
{
    /// <summary>PostgreSQL's default <c>scram_iterations</c>.</summary>
    public const int DefaultIterations = 4096;

    /// <summary>PostgreSQL's salt length (<c>SCRAM_DEFAULT_SALT_LEN</c>).</summary>
    private const int SaltLength = 16;

    /// <summary>
    /// Computes the verifier of <paramref name="password"/> with a random salt.
    /// </summary>
    /// <param name="password">Printable ASCII only (PostgreSQL would apply SASLprep to anything else, which this does not reproduce), at least 1 character.</param>
    /// <param name="iterations">PBKDF2 iterations, at least 4096.</param>
    /// <exception cref="ArgumentException">The password is empty or not printable ASCII (the message never contains it).</exception>
    public static string Compute(string password, int iterations = DefaultIterations)
    {
        return Compute(password, RandomNumberGenerator.GetBytes(SaltLength), iterations);
    }

    /// <summary>Computes the verifier with the given salt (for tests: the same inputs give the same verifier).</summary>
    internal static string Compute(string password, byte[] salt, int iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(salt);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, DefaultIterations);
        if (password.Length == 0)
        {
            throw new ArgumentException("The password is empty.", nameof(password));
        }

        foreach (char c in password)
        {
            if (c is < '!' or > '~')
            {
                throw new ArgumentException("The password has a character that is not printable ASCII (or a space); use printable ASCII only.", nameof(password));
            }
        }

        byte[] salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        byte[] clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        byte[] storedKey = SHA256.HashData(clientKey);
        byte[] serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        CryptographicOperations.ZeroMemory(salted);
        CryptographicOperations.ZeroMemory(clientKey);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}");
    }
}
