using System.Text;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>FNV-1a over UTF-8: stable ids for interface and method names, identical in every process and version.</summary>
internal static class StableId
{
    public static uint Of(string name)
    {
        uint hash = 2166136261;
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            hash = (hash ^ b) * 16777619;
        }

        return hash;
    }
}
