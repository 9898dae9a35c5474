using Xunit;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>Event-style waiting for tests: a condition polled against a deadline, failing with what was expected.</summary>
public static class Wait
{
    public static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> describe, CancellationToken cancellationToken = default)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s: {describe()}");
            }

            await Task.Delay(10, cancellationToken);
        }
    }

    /// <summary>Polls an asynchronous condition (a grain call, a query) until it holds or the deadline passes.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describe, CancellationToken cancellationToken = default)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s: {describe()}");
            }

            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>Awaits <paramref name="task"/> but fails with <paramref name="phase"/> if it takes longer than <paramref name="timeout"/>.</summary>
    public static async Task<T> ForAsync<T>(Task<T> task, TimeSpan timeout, string phase)
    {
        try
        {
            return await task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s in phase: {phase}");
            throw;
        }
    }

    /// <summary>Awaits <paramref name="task"/> but fails with <paramref name="phase"/> if it takes longer than <paramref name="timeout"/>.</summary>
    public static async Task ForAsync(Task task, TimeSpan timeout, string phase)
    {
        try
        {
            await task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s in phase: {phase}");
            throw;
        }
    }
}
