using System.Text;

namespace OrleansLsn.Runtime.Serialization;

/// <summary>Readable, assembly-version-free type names, used for method ids and in messages.</summary>
internal static class TypeNames
{
    public static string Format(Type type)
    {
        if (!type.IsGenericType)
        {
            return type.IsArray ? Format(type.GetElementType()!) + "[]" : type.Name;
        }

        var builder = new StringBuilder();
        string name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        builder.Append(tick >= 0 ? name[..tick] : name).Append('<');
        Type[] args = type.GetGenericArguments();
        for (int i = 0; i < args.Length; i++)
        {
            if (i > 0)
            {
                builder.Append(',');
            }

            builder.Append(Format(args[i]));
        }

        return builder.Append('>').ToString();
    }
}
