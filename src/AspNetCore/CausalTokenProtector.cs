using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;
using OrleansLsn.Client;

namespace OrleansLsn.AspNetCore;

/// <summary>
/// The token's protected text form, for every place outside the cluster it travels (a cookie, a header, a message for
/// background work): its 21 bytes protected by ASP.NET Core Data Protection (authenticated encryption under the
/// application's key ring, purpose <see cref="Purpose"/>), base64url, about 120 characters. A token changed on the way,
/// or protected by another application or key ring, does not read. Registered by <c>AddCausalTokens</c>.
/// </summary>
public sealed class CausalTokenProtector(IDataProtectionProvider provider)
{
    public const string Purpose = "OrleansLsn.AspNetCore.CausalToken.v1";

    // Far more than a protected token's text (about 120 characters); longer input is refused before any work.
    private const int MaxLength = 512;

    private readonly IDataProtector _protector = provider.CreateProtector(Purpose);

    /// <summary>The protected text of <paramref name="token"/>.</summary>
    public string Protect(CausalToken token) => WebEncoders.Base64UrlEncode(_protector.Protect(token.ToBytes()));

    /// <summary>The token <paramref name="text"/> protects, or <c>null</c> with what is wrong with it.</summary>
    public CausalToken? Unprotect(string text, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > MaxLength)
        {
            problem = $"{text.Length} characters, more than a token has";
            return null;
        }

        byte[] protectedBytes;
        try
        {
            protectedBytes = WebEncoders.Base64UrlDecode(text);
        }
        catch (FormatException)
        {
            problem = "not base64url";
            return null;
        }

        byte[] bytes;
        try
        {
            bytes = _protector.Unprotect(protectedBytes);
        }
        catch (CryptographicException)
        {
            problem = "it does not verify (changed, or protected by another key ring)";
            return null;
        }

        return CausalToken.FromBytes(bytes, out problem);
    }
}
