using OrleansLsn.Runtime.Invocation;
using OrleansLsn.Runtime.Messaging;

namespace OrleansLsn.Runtime;

/// <summary>One turn for an activation: a request or a timer tick.</summary>
internal abstract class WorkItem
{
    /// <summary>Whether this may start while other turns of the activation are in progress.</summary>
    public abstract bool Interleaves(ActivationData activation);

    /// <summary>Whether finishing this turn counts as activity for idle collection.</summary>
    public virtual bool CountsAsActivity => true;

    /// <summary>Runs on the activation's scheduler. Must not throw.</summary>
    public abstract Task RunAsync(ActivationData activation);

    /// <summary>The activation failed before running this.</summary>
    public abstract void Fail(Exception exception);
}

/// <summary>A request for a grain.</summary>
internal sealed class IncomingCall(RequestMessage request, MethodDescriptor method, IReplySink sink, CancellationTokenSource? cancellation) : WorkItem
{
    private int _finished;

    public RequestMessage Request { get; } = request;

    public MethodDescriptor Method { get; } = method;

    public IReplySink Sink { get; } = sink;

    public CancellationTokenSource? Cancellation { get; } = cancellation;

    public override bool Interleaves(ActivationData activation)
    {
        if (activation.Class.IsReentrant || Method.AlwaysInterleave)
        {
            return true;
        }

        if (activation.AllowCallChainReentrancy)
        {
            foreach (GrainId link in Request.CallChain)
            {
                if (link == activation.GrainId)
                {
                    return true;
                }
            }
        }

        return false;
    }

    public override async Task RunAsync(ActivationData activation)
    {
        GrainId[] chain = Request.CallChain;
        CallChainContext.Set(chain.Length == 0 ? activation.SelfChain : [.. chain, activation.GrainId]);
        object?[] args;
        try
        {
            args = RequestInvoker.ReadArguments(Method, Request, activation.Runtime, Cancellation?.Token ?? default);
        }
        catch (GrainSerializationException e)
        {
            Finish(activation.Runtime, e);
            return;
        }
        finally
        {
            Request.ReleaseBody();
        }

        Task task = RequestInvoker.Start(activation.Instance!, Method, args);
        await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        if (Request.IsOneWay && task.IsFaulted)
        {
            activation.LogOneWayFailed(Method.DisplayName, task.Exception!.InnerException!);
        }

        FinishWith(activation.Runtime, task);
    }

    public override void Fail(Exception exception) => Finish(null, exception);

    private void Finish(SiloRuntime? runtime, Exception exception)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return;
        }

        Request.ReleaseBody();
        if (!Request.IsOneWay)
        {
            Sink.Reply(Messaging.ResponseFrames.Exception(Request.Id, exception));
        }

        Complete(runtime);
    }

    private void FinishWith(SiloRuntime runtime, Task task)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return;
        }

        if (!Request.IsOneWay)
        {
            Sink.Reply(RequestInvoker.BuildResponse(Request.Id, Method, task, runtime));
        }

        Complete(runtime);
    }

    private void Complete(SiloRuntime? runtime)
    {
        if (Cancellation is not null)
        {
            runtime?.Untrack(Sink, Request.Id);
            Cancellation.Dispose();
        }

        Sink.Done();
    }
}

/// <summary>A timer tick.</summary>
internal sealed class TimerTick(GrainTimer timer) : WorkItem
{
    public override bool Interleaves(ActivationData activation) => timer.Options.Interleave || activation.Class.IsReentrant;

    public override bool CountsAsActivity => timer.Options.KeepAlive;

    public override async Task RunAsync(ActivationData activation)
    {
        CallChainContext.Set(activation.SelfChain);
        try
        {
            await timer.Callback(timer.Token).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext);
        }
#pragma warning disable CA1031 // A failing timer callback is logged; the timer keeps running, as in Orleans.
        catch (Exception e)
#pragma warning restore CA1031
        {
            activation.LogTimerFailed(e);
        }

        timer.ScheduleNext();
    }

    public override void Fail(Exception exception)
    {
    }
}
