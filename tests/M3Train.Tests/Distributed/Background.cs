using System.Runtime.ExceptionServices;

namespace M3Train.Tests.Distributed;

/// <summary>Work on a thread of its own (a rank, or a blocked call), joined with a deadline so a hang fails the test.</summary>
internal sealed class Background<T>
{
    readonly Thread _thread;
    T? _result;
    Exception? _error;

    public Background(Func<T> work)
    {
        _thread = new Thread(() =>
        {
            try { _result = work(); }
            catch (Exception e) { _error = e; }
        }) { IsBackground = true };
        _thread.Start();
    }

    public bool IsCompleted => !_thread.IsAlive;

    public T Result(TimeSpan within)
    {
        Join(within);
        if (_error != null) ExceptionDispatchInfo.Throw(_error);
        return _result!;
    }

    /// <summary>The exception the work ended with (it must have ended with one).</summary>
    public Exception Error(TimeSpan within)
    {
        Join(within);
        return _error ?? throw new InvalidOperationException("the work completed without an error");
    }

    void Join(TimeSpan within)
    {
        if (!_thread.Join(within)) throw new TimeoutException($"the work did not end within {within.TotalSeconds} s");
    }
}

internal static class Background
{
    public static Background<bool> Run(Action work) => new(() =>
    {
        work();
        return true;
    });

    public static Background<T> Run<T>(Func<T> work) => new(work);

    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
}
