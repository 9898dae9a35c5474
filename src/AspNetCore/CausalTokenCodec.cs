using System.Security.Cryptography;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.WebUtilities;

namespace OrleansLsn.AspNetCore;

/// <summary>
/// The token's text form: its 21 bytes protected by ASP.NET Core Data Protection (authenticated encryption under the
/// application's key ring, purpose <see cref="Purpose"/>), base64url. A token changed in transit, or protected by another
/// key ring, does not read.
/// </summary>
internal sealed class CausalTokenCodec(IDataProtectionProvider provider)
{
    public const string Purpose = "OrleansLsn.AspNetCore.CausalToken.v1";

    // Far more than a protected token's text (about 120 characters); longer input is refused before any work.
    private const int MaxLength = 512;

    private readonly IDataProtector _protector = provider.CreateProtector(Purpose);

    public string Write(CausalToken token) => WebEncoders.Base64UrlEncode(_protector.Protect(token.ToBytes()));

    public CausalToken? Read(string text, out string? problem)
    {
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
