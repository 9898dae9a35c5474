using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace OrleansLsn.Runtime.Serialization;

/// <summary>
/// Builds and caches a codec per declared type. The allowlist is closed: primitives, strings, byte arrays, enums,
/// nullable values, arrays, lists and dictionaries of accepted types, grain and observer interfaces, and types marked
/// <see cref="GenerateSerializerAttribute"/> whose public properties are all accepted. Anything else is refused when
/// the interface that uses it is registered, and nothing on the wire names a type.
/// </summary>
internal sealed class ContractSerializer
{
    private readonly ConcurrentDictionary<Type, ValueCodec> _codecs = new();
    private readonly JsonSerializerOptions _json;

    public ContractSerializer()
    {
        _json = new JsonSerializerOptions
        {
            TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
            RespectNullableAnnotations = true,
            RespectRequiredConstructorParameters = true,
            MaxDepth = 32,
            IncludeFields = false,
        };
        _json.MakeReadOnly();
    }

    /// <summary>The codec for <paramref name="type"/>; throws <see cref="GrainSerializationException"/> for a type outside the contract.</summary>
    public ValueCodec GetCodec(Type type)
    {
        if (_codecs.TryGetValue(type, out ValueCodec? codec))
        {
            return codec;
        }

        codec = Build(type, []);
        return _codecs.GetOrAdd(type, codec);
    }

    private ValueCodec Build(Type type, HashSet<Type> visiting)
    {
        if (_codecs.TryGetValue(type, out ValueCodec? cached))
        {
            return cached;
        }

        if (PrimitiveCodecs.All.TryGetValue(type, out ValueCodec? primitive))
        {
            return primitive;
        }

        if (type.IsEnum)
        {
            return Create(typeof(EnumCodec<>).MakeGenericType(type));
        }

        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return Create(typeof(NullableCodec<>).MakeGenericType(underlying), Build(underlying, visiting));
        }

        if (type.IsArray)
        {
            if (type.GetArrayRank() != 1)
            {
                throw Refused(type, "multi-dimensional arrays are not supported");
            }

            Type element = type.GetElementType()!;
            return Create(typeof(ListCodec<>).MakeGenericType(element), type, Build(element, visiting), true);
        }

        if (type.IsGenericType)
        {
            Type definition = type.GetGenericTypeDefinition();
            Type[] args = type.GetGenericArguments();
            if (definition == typeof(List<>) || definition == typeof(IReadOnlyList<>) || definition == typeof(IList<>)
                || definition == typeof(IReadOnlyCollection<>) || definition == typeof(ICollection<>) || definition == typeof(IEnumerable<>))
            {
                return Create(typeof(ListCodec<>).MakeGenericType(args[0]), type, Build(args[0], visiting), false);
            }

            if (definition == typeof(Dictionary<,>) || definition == typeof(IReadOnlyDictionary<,>) || definition == typeof(IDictionary<,>))
            {
                return Create(typeof(DictionaryCodec<,>).MakeGenericType(args), type, Build(args[0], visiting), Build(args[1], visiting));
            }
        }

        if (type.IsInterface && typeof(IAddressable).IsAssignableFrom(type))
        {
            return new ReferenceCodec(type);
        }

        if (type.IsDefined(typeof(GenerateSerializerAttribute), inherit: false) && !type.IsAbstract && !type.IsInterface)
        {
            if (visiting.Add(type))
            {
                foreach (PropertyInfo property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
                {
                    if (property.GetIndexParameters().Length > 0 || property.GetMethod is null)
                    {
                        continue;
                    }

                    // Every member type must be in the allowlist too, because the JSON encoder would otherwise accept it.
                    try
                    {
                        _ = Build(property.PropertyType, visiting);
                    }
                    catch (GrainSerializationException e)
                    {
                        throw Refused(type, $"its property {property.Name} is not serializable: {e.Message}");
                    }
                }
            }

            CheckRestorable(type);
            return new ContractTypeCodec(type, _json);
        }

        throw Refused(type, $"mark it [{nameof(GenerateSerializerAttribute).Replace("Attribute", string.Empty, StringComparison.Ordinal)}] to make it part of the contract");
    }

    /// <summary>
    /// Refuses a type whose constructor takes a property's value but which the JSON encoder would not call (a struct
    /// with a parameterized constructor, say): the value would silently come back as its default.
    /// </summary>
    private void CheckRestorable(Type type)
    {
        JsonTypeInfo info = _json.GetTypeInfo(type);
        var constructorParameters = type.GetConstructors()
            .SelectMany(c => c.GetParameters())
            .Select(p => p.Name)
            .Where(n => n is not null)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (JsonPropertyInfo property in info.Properties)
        {
            if (property.Set is null && property.AssociatedParameter is null && constructorParameters.Contains(property.Name))
            {
                throw Refused(type, $"its property {property.Name} is set only by a constructor the serializer does not use; mark that constructor [JsonConstructor]");
            }
        }
    }

    private static ValueCodec Create(Type codecType, params object[] args) =>
        (ValueCodec)Activator.CreateInstance(codecType, args)!;

    private static GrainSerializationException Refused(Type type, string why) =>
        new($"The type {TypeNames.Format(type)} cannot be sent: {why}.");
}
