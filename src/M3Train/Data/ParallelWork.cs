using System.Runtime.ExceptionServices;

namespace M3Train.Data;

/// <summary>
/// Parallel loops that throw their first failure as itself rather than inside an <see cref="AggregateException"/>,
/// so an error naming a file or a row reaches the user as it was written.
/// </summary>
static class ParallelWork
{
    public static void For(int count, Action<int> body) => Unwrapped(() => Parallel.For(0, count, body));

    public static void ForEach<T>(IEnumerable<T> items, Action<T> body) => Unwrapped(() => Parallel.ForEach(items, body));

    static void Unwrapped(Action loop)
    {
        try
        {
            loop();
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
    }
}
