using System.Collections.Frozen;
using System.Runtime.ExceptionServices;

namespace OrleansLsn.Runtime.Serialization;

/// <summary>
/// Exceptions travel as type name, message, parameter name and stack trace. The receiver rebuilds the exception only
/// if the name is in its allowlist (common BCL exceptions and the runtime's own); anything else becomes a
/// <see cref="RemoteGrainException"/>. The name is only a lookup key, never loaded as a type.
/// </summary>
internal static class ExceptionCodec
{
    private static readonly FrozenDictionary<string, Func<string, string?, Exception>> Known =
        new Dictionary<string, Func<string, string?, Exception>>
        {
            [typeof(InvalidOperationException).FullName!] = (m, _) => new InvalidOperationException(m),
            [typeof(ArgumentException).FullName!] = (m, p) => new ArgumentException(m, p),
            [typeof(ArgumentNullException).FullName!] = (m, p) => new ArgumentNullException(p, m),
            [typeof(ArgumentOutOfRangeException).FullName!] = (m, p) => new ArgumentOutOfRangeException(p, m),
            [typeof(NotSupportedException).FullName!] = (m, _) => new NotSupportedException(m),
            [typeof(NotImplementedException).FullName!] = (m, _) => new NotImplementedException(m),
            [typeof(TimeoutException).FullName!] = (m, _) => new TimeoutException(m),
            [typeof(OperationCanceledException).FullName!] = (m, _) => new OperationCanceledException(m),
            [typeof(TaskCanceledException).FullName!] = (m, _) => new TaskCanceledException(m),
            [typeof(KeyNotFoundException).FullName!] = (m, _) => new KeyNotFoundException(m),
            [typeof(FormatException).FullName!] = (m, _) => new FormatException(m),
            [typeof(OverflowException).FullName!] = (m, _) => new OverflowException(m),
            [typeof(InvalidCastException).FullName!] = (m, _) => new InvalidCastException(m),
            [typeof(NullReferenceException).FullName!] = (m, _) => new NullReferenceException(m),
            [typeof(IndexOutOfRangeException).FullName!] = (m, _) => new IndexOutOfRangeException(m),
            [typeof(DivideByZeroException).FullName!] = (m, _) => new DivideByZeroException(m),
            [typeof(UnauthorizedAccessException).FullName!] = (m, _) => new UnauthorizedAccessException(m),
            [typeof(ObjectDisposedException).FullName!] = (m, p) => new ObjectDisposedException(p, m),
            [typeof(GrainRuntimeException).FullName!] = (m, _) => new GrainRuntimeException(m),
            [typeof(ClientNotAvailableException).FullName!] = (m, _) => new ClientNotAvailableException(m),
            [typeof(SiloUnavailableException).FullName!] = (m, _) => new SiloUnavailableException(m),
            [typeof(GrainMethodNotFoundException).FullName!] = (m, _) => new GrainMethodNotFoundException(m),
            [typeof(GrainSerializationException).FullName!] = (m, _) => new GrainSerializationException(m),
        }.ToFrozenDictionary(StringComparer.Ordinal);

    public static void Write(FrameBuffer writer, Exception exception)
    {
        string typeName;
        string message;
        if (exception is RemoteGrainException remote && remote.RemoteTypeName.Length > 0)
        {
            typeName = remote.RemoteTypeName;
            message = remote.RemoteMessage ?? remote.Message;
        }
        else
        {
            typeName = exception.GetType().FullName ?? exception.GetType().Name;
            message = exception is ArgumentException argument && argument.ParamName is not null
                ? argument.Message.Replace($" (Parameter '{argument.ParamName}')", string.Empty, StringComparison.Ordinal)
                : exception.Message;
        }

        writer.WriteString(typeName);
        writer.WriteString(message);
        writer.WriteString(exception is ArgumentException a ? a.ParamName : exception is ObjectDisposedException d ? d.ObjectName : null);
        writer.WriteString(exception.StackTrace);
    }

    public static Exception Read(ref SpanReader reader)
    {
        string typeName = reader.ReadRequiredString();
        string message = reader.ReadString() ?? string.Empty;
        string? parameter = reader.ReadString();
        string? stackTrace = reader.ReadString();
        Exception exception = Known.TryGetValue(typeName, out Func<string, string?, Exception>? factory)
            ? factory(message, parameter)
            : new RemoteGrainException(typeName, message);
        if (!string.IsNullOrEmpty(stackTrace))
        {
            exception = ExceptionDispatchInfo.SetRemoteStackTrace(exception, stackTrace);
        }

        return exception;
    }
}
