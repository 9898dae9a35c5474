using System.Collections.Concurrent;
using System.Linq.Expressions;
using System.Reflection;
using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>
/// Describes grain and observer interfaces once, on first use: wire ids, codecs (which enforce the serializer's
/// allowlist), attributes, and compiled invokers. After that a call only does dictionary lookups.
/// </summary>
internal sealed class InterfaceRegistry
{
    private readonly ConcurrentDictionary<Type, InterfaceDescriptor> _byType = new();
    private readonly ConcurrentDictionary<uint, InterfaceDescriptor> _byId = new();
    private readonly Lock _lock = new();

    public InterfaceRegistry(ContractSerializer serializer)
    {
        Serializer = serializer;
    }

    public ContractSerializer Serializer { get; }

    public bool TryGet(uint id, out InterfaceDescriptor descriptor) => _byId.TryGetValue(id, out descriptor!);

    /// <summary>The descriptor of a grain or observer interface.</summary>
    /// <exception cref="ArgumentException">The type is not such an interface, or uses types outside the contract.</exception>
    public InterfaceDescriptor Get(Type type)
    {
        if (_byType.TryGetValue(type, out InterfaceDescriptor? existing))
        {
            return existing;
        }

        lock (_lock)
        {
            if (_byType.TryGetValue(type, out existing))
            {
                return existing;
            }

            InterfaceDescriptor descriptor = Build(type);
            if (_byId.TryGetValue(descriptor.Id, out InterfaceDescriptor? clash))
            {
                throw new ArgumentException($"The interfaces {clash.Name} and {descriptor.Name} have the same wire id; give one an [Alias].", nameof(type));
            }

            _byId[descriptor.Id] = descriptor;
            _byType[type] = descriptor;
            return descriptor;
        }
    }

    private InterfaceDescriptor Build(Type type)
    {
        bool isGrain = typeof(IGrain).IsAssignableFrom(type);
        bool isObserver = typeof(IGrainObserver).IsAssignableFrom(type);
        if (!type.IsInterface || !(isGrain || isObserver) || isGrain == isObserver)
        {
            throw new ArgumentException(
                $"{type.FullName} is not a grain or observer interface (an interface extending {nameof(IGrainWithStringKey)} or {nameof(IGrainObserver)}).",
                nameof(type));
        }

        if (type.IsGenericTypeDefinition)
        {
            throw new ArgumentException($"{type.FullName} is an open generic interface.", nameof(type));
        }

        string name = type.GetCustomAttribute<AliasAttribute>()?.Alias ?? type.FullName ?? type.Name;
        var descriptor = new InterfaceDescriptor(type, name, isObserver);
        var methods = new List<MethodDescriptor>();
        var ids = new Dictionary<uint, string>();
        foreach (Type contract in new[] { type }.Concat(type.GetInterfaces()))
        {
            foreach (MethodInfo method in contract.GetMethods(BindingFlags.Public | BindingFlags.Instance))
            {
                if (method.IsSpecialName || method.IsStatic || !method.IsAbstract)
                {
                    continue;
                }

                MethodDescriptor md = BuildMethod(descriptor, method);
                if (!ids.TryAdd(md.Id, md.Name))
                {
                    throw new ArgumentException($"{type.FullName}: the methods {ids[md.Id]} and {md.Name} have the same wire id; give one an [Alias].", nameof(type));
                }

                methods.Add(md);
            }
        }

        descriptor.SetMethods(methods);
        return descriptor;
    }

    private MethodDescriptor BuildMethod(InterfaceDescriptor owner, MethodInfo method)
    {
        string where = $"{owner.Type.FullName}.{method.Name}";
        Type returnType = method.ReturnType;
        ReturnKind kind;
        Type? resultType = null;
        if (returnType == typeof(Task))
        {
            kind = ReturnKind.Task;
        }
        else if (returnType == typeof(ValueTask))
        {
            kind = ReturnKind.ValueTask;
        }
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(Task<>))
        {
            kind = ReturnKind.TaskOfT;
            resultType = returnType.GetGenericArguments()[0];
        }
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(ValueTask<>))
        {
            kind = ReturnKind.ValueTaskOfT;
            resultType = returnType.GetGenericArguments()[0];
        }
        else
        {
            throw new ArgumentException($"{where} must return Task, Task<T>, ValueTask or ValueTask<T>.");
        }

        if (method.IsGenericMethodDefinition)
        {
            throw new ArgumentException($"{where} is generic; generic grain methods are not supported.");
        }

        bool oneWay = method.IsDefined(typeof(OneWayAttribute));
        if (oneWay && resultType is not null)
        {
            throw new ArgumentException($"{where} is [OneWay] but returns a value.");
        }

        ParameterInfo[] parameters = method.GetParameters();
        var codecs = new ValueCodec?[parameters.Length];
        int tokenIndex = -1;
        for (int i = 0; i < parameters.Length; i++)
        {
            Type parameterType = parameters[i].ParameterType;
            if (parameterType.IsByRef)
            {
                throw new ArgumentException($"{where}: parameter {parameters[i].Name} is passed by reference.");
            }

            if (parameterType == typeof(CancellationToken))
            {
                tokenIndex = tokenIndex < 0 ? i : throw new ArgumentException($"{where} has two cancellation tokens.");
                continue;
            }

            codecs[i] = CodecFor(parameterType, $"{where}: parameter {parameters[i].Name}");
        }

        ValueCodec? resultCodec = resultType is null ? null : CodecFor(resultType, $"{where}: the result");
        string wireName = method.GetCustomAttribute<AliasAttribute>()?.Alias
            ?? method.Name + "(" + string.Join(",", parameters.Select(p => TypeNames.Format(p.ParameterType))) + ")";
        Type pendingType = resultType ?? typeof(object);
        return new MethodDescriptor
        {
            Interface = owner,
            Method = method,
            Name = method.Name,
            Id = StableId.Of(wireName),
            ParameterCodecs = codecs,
            CancellationTokenIndex = tokenIndex,
            ReturnKind = kind,
            ResultCodec = resultCodec,
            IsOneWay = oneWay,
            AlwaysInterleave = method.IsDefined(typeof(AlwaysInterleaveAttribute)),
            ResponseTimeout = method.GetCustomAttribute<ResponseTimeoutAttribute>()?.Timeout,
            Invoke = CompileInvoker(method, kind),
            GetResult = resultType is null
                ? static _ => null
                : Generic<Func<Task, object?>>(nameof(ResultOf), resultType),
            CreatePendingCall = MakeFactory(pendingType, kind),
            FromTask = kind switch
            {
                ReturnKind.Task => static t => t,
                ReturnKind.ValueTask => static t => new ValueTask(t),
                _ => static _ => throw new InvalidOperationException("Only methods without a result complete from a bare task."),
            },
        };
    }

    private ValueCodec CodecFor(Type type, string what)
    {
        try
        {
            return Serializer.GetCodec(type);
        }
        catch (GrainSerializationException e)
        {
            throw new ArgumentException($"{what}: {e.Message}", e);
        }
    }

    private static Func<PendingCall> MakeFactory(Type resultType, ReturnKind kind)
    {
        Func<ReturnKind, PendingCall> create = Generic<Func<ReturnKind, PendingCall>>(nameof(NewPendingCall), resultType);
        return () => create(kind);
    }

    private static TDelegate Generic<TDelegate>(string name, Type typeArgument)
        where TDelegate : Delegate =>
        typeof(InterfaceRegistry).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(typeArgument)
            .CreateDelegate<TDelegate>();

    private static object? ResultOf<T>(Task task) => ((Task<T>)task).Result;

    private static PendingCall NewPendingCall<T>(ReturnKind kind) => new PendingCall<T>(kind);

    private static Func<object, object?[], Task> CompileInvoker(MethodInfo method, ReturnKind kind)
    {
        ParameterExpression target = Expression.Parameter(typeof(object), "target");
        ParameterExpression args = Expression.Parameter(typeof(object?[]), "args");
        ParameterInfo[] parameters = method.GetParameters();
        var arguments = new Expression[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
        {
            arguments[i] = Expression.Convert(Expression.ArrayIndex(args, Expression.Constant(i)), parameters[i].ParameterType);
        }

        Expression call = Expression.Call(Expression.Convert(target, method.DeclaringType!), method, arguments);
        if (kind is ReturnKind.ValueTask or ReturnKind.ValueTaskOfT)
        {
            call = Expression.Call(call, method.ReturnType.GetMethod(nameof(ValueTask.AsTask))!);
        }

        return Expression.Lambda<Func<object, object?[], Task>>(Expression.Convert(call, typeof(Task)), target, args).Compile();
    }
}
