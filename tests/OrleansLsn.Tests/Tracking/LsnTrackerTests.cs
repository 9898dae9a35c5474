using System.Diagnostics;
using OrleansLsn.Tests.Infrastructure;
using OrleansLsn.Tracking;
using Xunit;

namespace OrleansLsn.Tests.Tracking;

/// <summary>The engine's semantics with pushed advances only (no replica): exact, fast and deterministic.</summary>
public sealed class LsnTrackerTests
{
    private static LsnTracker PushOnly(LsnTrackerOptions? options = null) => new("test", options ?? new LsnTrackerOptions());

    [Fact]
    public async Task RequestAndAwait_AlreadyReplayed_CompletesSynchronouslyReady()
    {
        await using LsnTracker tracker = PushOnly();
        tracker.ReportReplay(new Lsn(100));
        ValueTask<LsnWaitResult> wait = tracker.RequestAndAwaitAsync(new Lsn(100));
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.Equal(new LsnWaitResult(LsnWaitOutcome.Ready, new Lsn(100)), await wait);
        Assert.Equal(0, tracker.PendingWaiters);
    }

    [Fact]
    public async Task ReportReplay_ReleasesExactlyTheSatisfiedWaiters()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using LsnTracker tracker = PushOnly();
        Task<LsnWaitResult>[] waits = Enumerable.Range(1, 100)
            .Select(i => tracker.RequestAndAwaitAsync(new Lsn((ulong)i * 10), TimeSpan.FromMinutes(1), ct).AsTask())
            .ToArray();
        Assert.Equal(100, tracker.PendingWaiters);

        tracker.ReportReplay(new Lsn(505));
        await Task.WhenAll(waits.Take(50));
        Assert.All(waits.Take(50), t => Assert.Equal(new LsnWaitResult(LsnWaitOutcome.Ready, new Lsn(505)), t.Result));
        Assert.All(waits.Skip(50), t => Assert.False(t.IsCompleted));
        Assert.Equal(50, tracker.PendingWaiters);

        tracker.ReportReplay(new Lsn(400)); // backwards pushes are ignored
        Assert.Equal(new Lsn(505), tracker.LastReplay);
        tracker.ReportReplay(new Lsn(1000));
        await Task.WhenAll(waits);
        Assert.Equal(0, tracker.PendingWaiters);
    }

    [Fact]
    public async Task RequestAndAwait_NotReplayed_TimesOutAfterTimeoutNotBefore()
    {
        await using LsnTracker tracker = PushOnly();
        tracker.ReportReplay(new Lsn(5));
        var timeout = TimeSpan.FromMilliseconds(150);
        var sw = Stopwatch.StartNew();
        LsnWaitResult result = await tracker.RequestAndAwaitAsync(new Lsn(10), timeout, TestContext.Current.CancellationToken);
        sw.Stop();
        Assert.Equal(new LsnWaitResult(LsnWaitOutcome.TimedOut, new Lsn(5)), result);
        Assert.True(sw.Elapsed >= timeout, $"timed out after {sw.Elapsed.TotalMilliseconds} ms, before the {timeout.TotalMilliseconds} ms timeout");
        Assert.Equal(0, tracker.PendingWaiters);
    }

    [Fact]
    public async Task CancelledWait_ThrowsAndLeavesIndexAtOnce()
    {
        await using LsnTracker tracker = PushOnly();
        using var cts = new CancellationTokenSource();
        ValueTask<LsnWaitResult> wait = tracker.RequestAndAwaitAsync(new Lsn(10), TimeSpan.FromMinutes(1), cts.Token);
        Assert.Equal(1, tracker.PendingWaiters);
        await cts.CancelAsync();
        Assert.Equal(0, tracker.PendingWaiters); // synchronously, not after some delay
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await wait);

        // Cancelling after the release changes nothing.
        using var late = new CancellationTokenSource();
        ValueTask<LsnWaitResult> released = tracker.RequestAndAwaitAsync(new Lsn(10), TimeSpan.FromMinutes(1), late.Token);
        tracker.ReportReplay(new Lsn(10));
        await late.CancelAsync();
        Assert.Equal(LsnWaitOutcome.Ready, (await released).Outcome);
    }

    [Fact]
    public async Task AlreadyCancelledToken_ReturnsCanceledWithoutRegistering()
    {
        await using LsnTracker tracker = PushOnly();
        ValueTask<LsnWaitResult> wait = tracker.RequestAndAwaitAsync(new Lsn(10), null, new CancellationToken(canceled: true));
        Assert.True(wait.IsCanceled);
        Assert.Equal(0, tracker.PendingWaiters);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(601_000)]
    public async Task InvalidTimeout_ThrowsArgumentOutOfRange(int milliseconds)
    {
        await using LsnTracker tracker = PushOnly();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => tracker.RequestAndAwaitAsync(new Lsn(1), TimeSpan.FromMilliseconds(milliseconds)));
        Assert.Contains("MaxWaitTimeout", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => tracker.RequestNotification(new Lsn(1), _ => { }, Timeout.InfiniteTimeSpan));
        Assert.Equal(0, tracker.PendingWaiters);
    }

    [Fact]
    public async Task RequestNotification_NullCallback_Throws()
    {
        await using LsnTracker tracker = PushOnly();
        Assert.Throws<ArgumentNullException>(() => tracker.RequestNotification(new Lsn(1), null!));
    }

    [Fact]
    public void InvalidOptions_AreRejectedWithEveryProblem()
    {
        var options = new LsnTrackerOptions { DefaultWaitTimeout = TimeSpan.Zero, QueryTimeout = TimeSpan.FromSeconds(-1) };
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => new LsnTracker("r", options));
        Assert.Contains(ex.Failures, f => f.Contains("DefaultWaitTimeout", StringComparison.Ordinal));
        Assert.Contains(ex.Failures, f => f.Contains("QueryTimeout", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RequestNotification_FiresOnceReady_AndDisposeWithdraws()
    {
        await using LsnTracker tracker = PushOnly();
        var fired = new TaskCompletionSource<LsnWaitResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        int calls = 0;
        using IDisposable registration = tracker.RequestNotification(new Lsn(20), r =>
        {
            Interlocked.Increment(ref calls);
            fired.TrySetResult(r);
        }, TimeSpan.FromMinutes(1));
        bool withdrawnCalled = false;
        IDisposable withdrawn = tracker.RequestNotification(new Lsn(20), _ => withdrawnCalled = true, TimeSpan.FromMinutes(1));
        withdrawn.Dispose();
        Assert.Equal(1, tracker.PendingWaiters);

        tracker.ReportReplay(new Lsn(25));
        tracker.ReportReplay(new Lsn(30));
        LsnWaitResult result = await Wait.ForAsync(fired.Task, TimeSpan.FromSeconds(10), "notification for 0/14");
        Assert.Equal(new LsnWaitResult(LsnWaitOutcome.Ready, new Lsn(25)), result);

        // A second callback registered and released later proves the first queue has drained.
        var probe = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using IDisposable _ = tracker.RequestNotification(new Lsn(30), _ => probe.TrySetResult());
        await Wait.ForAsync(probe.Task.ContinueWith(_ => true, TaskScheduler.Default), TimeSpan.FromSeconds(10), "probe notification");
        Assert.Equal(1, Volatile.Read(ref calls));
        Assert.False(withdrawnCalled);
    }

    [Fact]
    public async Task RequestNotification_TimesOut_WithTimedOutResult()
    {
        await using LsnTracker tracker = PushOnly();
        var fired = new TaskCompletionSource<LsnWaitResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        using IDisposable _ = tracker.RequestNotification(new Lsn(20), r => fired.TrySetResult(r), TimeSpan.FromMilliseconds(50));
        LsnWaitResult result = await Wait.ForAsync(fired.Task, TimeSpan.FromSeconds(10), "notification timeout");
        Assert.Equal(LsnWaitOutcome.TimedOut, result.Outcome);
        Assert.Equal(0, tracker.PendingWaiters);
    }

    [Fact]
    public async Task ThrowingCallback_DoesNotBreakTracker()
    {
        await using LsnTracker tracker = PushOnly();
        var threw = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using IDisposable bad = tracker.RequestNotification(new Lsn(1), _ =>
        {
            threw.TrySetResult();
            throw new InvalidOperationException("subscriber bug");
        });
        tracker.ReportReplay(new Lsn(1));
        await Wait.ForAsync(threw.Task.ContinueWith(_ => true, TaskScheduler.Default), TimeSpan.FromSeconds(10), "throwing callback ran");

        ValueTask<LsnWaitResult> next = tracker.RequestAndAwaitAsync(new Lsn(2), TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        tracker.ReportReplay(new Lsn(2));
        Assert.Equal(LsnWaitOutcome.Ready, (await next).Outcome);
    }

    [Fact]
    public async Task ReplaySubscription_SlowReaderSeesNewestValueOnly()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using LsnTracker tracker = PushOnly();
        tracker.ReportReplay(new Lsn(1));
        using LsnReplaySubscription subscription = tracker.SubscribeReplay();
        Assert.Equal(new Lsn(1), await subscription.Updates.ReadAsync(ct));
        for (ulong i = 2; i <= 10_000; i++)
        {
            tracker.ReportReplay(new Lsn(i));
        }

        // The reader did not read while 9 999 advances happened: one value is buffered, the newest.
        Assert.Equal(new Lsn(10_000), await subscription.Updates.ReadAsync(ct));
        Assert.False(subscription.Updates.TryRead(out _));
    }

    [Fact]
    public async Task Dispose_TimesOutPendingWaitersAndCompletesSubscriptions()
    {
        LsnTracker tracker = PushOnly();
        ValueTask<LsnWaitResult> wait = tracker.RequestAndAwaitAsync(new Lsn(10), TimeSpan.FromMinutes(1));
        LsnReplaySubscription subscription = tracker.SubscribeReplay();
        await tracker.DisposeAsync();
        Assert.Equal(LsnWaitOutcome.TimedOut, (await wait).Outcome);
        Assert.False(await subscription.Updates.WaitToReadAsync(TestContext.Current.CancellationToken));
        Assert.Equal(TrackerHealthStatus.Stopped, tracker.Health.Status);
        Assert.Throws<ObjectDisposedException>(() => tracker.RequestAndAwaitAsync(new Lsn(11)));
    }

    [Fact]
    public async Task TenThousandConcurrentWaiters_MixedTargets_ReleasedCorrectly()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        await using LsnTracker tracker = PushOnly();
        var random = new Random(7);
        ulong[] targets = Enumerable.Range(0, 10_000).Select(_ => (ulong)random.Next(1, 1000)).ToArray();
        Task<LsnWaitResult>[] waits = targets
            .Select(t => Task.Run(() => tracker.RequestAndAwaitAsync(new Lsn(t), TimeSpan.FromMinutes(1), ct).AsTask(), ct))
            .ToArray();
        // Advance concurrently with registration: no waiter may be lost between its check and its registration.
        for (ulong replay = 0; replay <= 1000; replay += 10)
        {
            tracker.ReportReplay(new Lsn(replay));
            await Task.Yield();
        }

        LsnWaitResult[] results = await Wait.ForAsync(Task.WhenAll(waits), TimeSpan.FromSeconds(30), "10 000 waiters released");
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(LsnWaitOutcome.Ready, results[i].Outcome);
            Assert.True(results[i].ReplayLsn >= new Lsn(targets[i]), $"waiter {i} for {targets[i]} released at {results[i].ReplayLsn}");
        }

        Assert.Equal(0, tracker.PendingWaiters);
    }
}
