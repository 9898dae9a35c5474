namespace OrleansLsn.Runtime.Invocation;

/// <summary>What a grain or observer method returns.</summary>
internal enum ReturnKind
{
    /// <summary><see cref="Task"/>.</summary>
    Task,

    /// <summary><see cref="Task{TResult}"/>.</summary>
    TaskOfT,

    /// <summary><see cref="ValueTask"/>.</summary>
    ValueTask,

    /// <summary><see cref="ValueTask{TResult}"/>.</summary>
    ValueTaskOfT,
}
