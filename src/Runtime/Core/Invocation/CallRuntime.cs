using System.Collections.Concurrent;
using System.Diagnostics;
using OrleansLsn.Runtime.Messaging;
using OrleansLsn.Runtime.Serialization;

namespace OrleansLsn.Runtime.Invocation;

/// <summary>
/// The caller's side of calls, shared by the client and the silo: serializes a request, tracks it until its
/// response, timeout or cancellation, and tells the callee when the caller gives up. Subclasses decide where a
/// request goes (<see cref="SendRequestAsync"/>).
/// </summary>
internal abstract class CallRuntime : IReferenceContext, IDisposable
{
    private static readonly TimeSpan SweepPeriod = TimeSpan.FromMilliseconds(20);

    private readonly ConcurrentDictionary<long, PendingCall> _pending = new();
    private readonly ITimer _sweep;
    private long _nextId;

    protected CallRuntime(InterfaceRegistry interfaces, TimeSpan defaultResponseTimeout, TimeProvider timeProvider, string side)
    {
        Interfaces = interfaces;
        DefaultResponseTimeout = defaultResponseTimeout;
        Side = side;
        _sweep = timeProvider.CreateTimer(static s => ((CallRuntime)s!).SweepTimeouts(), this, SweepPeriod, SweepPeriod);
    }

    public InterfaceRegistry Interfaces { get; }

    public TimeSpan DefaultResponseTimeout { get; }

    /// <summary>"client" or "silo", for metrics.</summary>
    public string Side { get; }

    public int PendingCount => _pending.Count;

    /// <summary>Sends a completed request frame (owning it from here) and records on <paramref name="call"/> where it went.</summary>
    protected abstract ValueTask SendRequestAsync(ReferenceAddress target, FrameBuffer frame, PendingCall? call);

    /// <summary>Tells the callee that the caller gave up on <paramref name="call"/>. Best effort.</summary>
    protected abstract void SendCancel(PendingCall call);

    /// <summary>The entry point of every proxy call.</summary>
    public object Invoke(ReferenceAddress target, MethodDescriptor method, object?[] args)
    {
        CancellationToken cancellationToken = method.CancellationTokenIndex >= 0 ? (CancellationToken)args[method.CancellationTokenIndex]! : default;
        if (cancellationToken.IsCancellationRequested)
        {
            PendingCall canceled = method.CreatePendingCall();
            canceled.TrySetCanceled(cancellationToken);
            return canceled.ReturnValue;
        }

        TimeSpan timeout = method.ResponseTimeout ?? DefaultResponseTimeout;
        long id = Interlocked.Increment(ref _nextId);
        var frame = new FrameBuffer(128);
        try
        {
            RequestMessage.WriteHeader(
                frame,
                id,
                method.IsOneWay ? RequestFlags.OneWay : RequestFlags.None,
                target,
                method.Id,
                (uint)Math.Clamp(timeout.TotalMilliseconds, 1, uint.MaxValue),
                forwardCount: 0,
                CallChainContext.Chain);
            ValueCodec?[] codecs = method.ParameterCodecs;
            for (int i = 0; i < codecs.Length; i++)
            {
                codecs[i]?.Write(frame, args[i], this);
            }

            frame.Complete();
        }
        catch (Exception e) when (e is GrainSerializationException or InvalidCastException or NotSupportedException)
        {
            frame.Dispose();
            PendingCall failed = method.CreatePendingCall();
            failed.TrySetException(e as GrainSerializationException ?? new GrainSerializationException($"Cannot serialize the arguments of {method.DisplayName}: {e.Message}", e));
            return failed.ReturnValue;
        }

        if (method.IsOneWay)
        {
            return method.FromTask(SendOneWay(target, frame));
        }

        PendingCall call = method.CreatePendingCall();
        call.Id = id;
        call.Method = method;
        call.Timeout = timeout;
        call.StartedAt = Stopwatch.GetTimestamp();
        call.Deadline = call.StartedAt + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        call.Target = target.ToString();
        _pending[id] = call;
        if (cancellationToken.CanBeCanceled)
        {
            call.Registration = cancellationToken.UnsafeRegister(
                static (state, token) =>
                {
                    var (runtime, pending) = ((CallRuntime, PendingCall))state!;
                    runtime.CancelCall(pending, token);
                },
                (this, call));
        }

        ValueTask sent;
        try
        {
            sent = SendRequestAsync(target, frame, call);
        }
#pragma warning disable CA1031 // A failed send fails this call only.
        catch (Exception e)
#pragma warning restore CA1031
        {
            sent = ValueTask.FromException(e);
        }

        if (!sent.IsCompletedSuccessfully)
        {
            _ = ObserveSendAsync(sent, call);
        }

        return call.ReturnValue;
    }

    private Task SendOneWay(ReferenceAddress target, FrameBuffer frame)
    {
        try
        {
            ValueTask sent = SendRequestAsync(target, frame, null);
            return sent.IsCompletedSuccessfully ? Task.CompletedTask : sent.AsTask();
        }
#pragma warning disable CA1031 // Reported through the returned task.
        catch (Exception e)
#pragma warning restore CA1031
        {
            return Task.FromException(e);
        }
    }

    private async Task ObserveSendAsync(ValueTask sent, PendingCall call)
    {
        try
        {
            await sent.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The failure is the call's result.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(call.Id, e is GrainRuntimeException or TimeoutException or OperationCanceledException ? e : new SiloUnavailableException($"Could not send {call.Method.DisplayName}: {e.Message}", e), "unavailable");
        }
    }

    /// <summary>Completes the call a response frame answers; late or unknown responses are dropped.</summary>
    public void OnResponse(ReadOnlySpan<byte> frame)
    {
        var reader = new SpanReader(frame);
        reader.ReadByte();
        long id = (long)reader.ReadVarUInt64();
        var status = (ResponseStatus)reader.ReadByte();
        if (!_pending.TryRemove(id, out PendingCall? call))
        {
            return;
        }

        call.Registration.Dispose();
        string outcome;
        switch (status)
        {
            case ResponseStatus.Ok:
                outcome = "ok";
                call.TrySetResult(ref reader, this);
                break;
            case ResponseStatus.Exception:
                outcome = "exception";
                Exception remote;
                try
                {
                    remote = ExceptionCodec.Read(ref reader);
                }
                catch (GrainSerializationException e)
                {
                    remote = e;
                }

                call.TrySetException(remote);
                break;
            case ResponseStatus.UnknownInterface:
                outcome = "unknown";
                call.TrySetException(new GrainMethodNotFoundException(
                    $"No grain class on the silo implements {call.Method.Interface.Name} (called {call.Method.DisplayName} on {call.Target}). Is the grain registered with the silo?"));
                break;
            case ResponseStatus.UnknownMethod:
                outcome = "unknown";
                call.TrySetException(new GrainMethodNotFoundException(
                    $"The silo's {call.Method.Interface.Name} has no method {call.Method.Method.Name} with this signature. Do the client and the silo use the same contract version?"));
                break;
            case ResponseStatus.ClientNotAvailable:
                outcome = "client_unavailable";
                call.TrySetException(new ClientNotAvailableException(TryReadDetail(ref reader) ?? $"The client behind {call.Target} is not connected."));
                break;
            case ResponseStatus.Canceled:
                if (Stopwatch.GetTimestamp() >= call.Deadline)
                {
                    outcome = "timeout";
                    call.TrySetException(TimedOut(call));
                }
                else
                {
                    outcome = "canceled";
                    call.TrySetException(new OperationCanceledException($"{call.Method.DisplayName} was canceled in the grain."));
                }

                break;
            default:
                outcome = "invalid";
                call.TrySetException(new GrainSerializationException($"Unknown response status {(byte)status}."));
                break;
        }

        RuntimeMetrics.CallCompleted(Side, outcome, call.StartedAt);
    }

    /// <summary>Fails one pending call, if it is still pending.</summary>
    public void Fail(long id, Exception exception, string outcome)
    {
        if (_pending.TryRemove(id, out PendingCall? call))
        {
            call.Registration.Dispose();
            call.TrySetException(exception);
            RuntimeMetrics.CallCompleted(Side, outcome, call.StartedAt);
        }
    }

    /// <summary>Fails every call sent over <paramref name="channel"/> (a connection that closed), at once.</summary>
    public void FailCallsOn(object channel, Func<PendingCall, Exception> exception, string outcome)
    {
        foreach (KeyValuePair<long, PendingCall> entry in _pending)
        {
            if (ReferenceEquals(entry.Value.Channel, channel))
            {
                Fail(entry.Key, exception(entry.Value), outcome);
            }
        }
    }

    private void CancelCall(PendingCall call, CancellationToken token)
    {
        if (_pending.TryRemove(call.Id, out _))
        {
            call.TrySetCanceled(token);
            RuntimeMetrics.CallCompleted(Side, "canceled", call.StartedAt);
            SendCancel(call);
        }
    }

    private void SweepTimeouts()
    {
        long now = Stopwatch.GetTimestamp();
        foreach (KeyValuePair<long, PendingCall> entry in _pending)
        {
            PendingCall call = entry.Value;
            if (now >= call.Deadline && _pending.TryRemove(entry.Key, out _))
            {
                call.Registration.Dispose();
                call.TrySetException(TimedOut(call));
                RuntimeMetrics.CallCompleted(Side, "timeout", call.StartedAt);
                SendCancel(call);
            }
        }
    }

    private static TimeoutException TimedOut(PendingCall call) =>
        new($"Response did not arrive on time in {call.Timeout} for {call.Method.DisplayName} on {call.Target}.");

    private static string? TryReadDetail(ref SpanReader reader)
    {
        try
        {
            return reader.Remaining > 0 ? reader.ReadString() : null;
        }
        catch (GrainSerializationException)
        {
            return null;
        }
    }

    public virtual ReferenceAddress GetAddress(object reference, Type declaredType)
    {
        if (reference is ReferenceProxy proxy)
        {
            return proxy.Address;
        }

        throw new GrainSerializationException(typeof(IGrainObserver).IsAssignableFrom(declaredType)
            ? $"Pass the reference returned by CreateObjectReference<{declaredType.Name}>, not the {reference.GetType().Name} object itself."
            : $"Pass a grain reference (GrainFactory.GetGrain, or AsReference<{declaredType.Name}>() inside a grain), not the {reference.GetType().Name} object itself.");
    }

    /// <summary>A reference to the grain with this key, bound to this runtime.</summary>
    public TGrain GetGrain<TGrain>(string primaryKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(primaryKey);
        InterfaceDescriptor descriptor = Interfaces.Get(typeof(TGrain));
        return (TGrain)ReferenceProxy.Create(descriptor, this, ReferenceAddress.ForGrain(descriptor.Id, primaryKey));
    }

    public object CreateReference(Type interfaceType, ReferenceAddress address)
    {
        InterfaceDescriptor descriptor = Interfaces.Get(interfaceType);
        return ReferenceProxy.Create(descriptor, this, address);
    }

    public virtual void Dispose()
    {
        _sweep.Dispose();
        foreach (KeyValuePair<long, PendingCall> entry in _pending)
        {
            Fail(entry.Key, new ObjectDisposedException(GetType().Name, "The runtime was shut down before the response arrived."), "shutdown");
        }

        GC.SuppressFinalize(this);
    }
}
