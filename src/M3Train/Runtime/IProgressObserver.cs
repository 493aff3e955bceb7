namespace M3Train.Runtime;

/// <summary>
/// Shows long work as it goes (<see cref="ProgressTask"/>): m3train draws a status line on stderr; a program that uses
/// the library without setting <see cref="ProgressTask.Observer"/> shows nothing.
/// </summary>
public interface IProgressObserver
{
    /// <summary>A task began (nothing done yet).</summary>
    void Started(ProgressTask task);

    /// <summary>A task reported how far it is (<see cref="ProgressTask.Done"/> and its latest metrics).</summary>
    void Updated(ProgressTask task);

    /// <summary>A task ended (finished or not).</summary>
    void Ended(ProgressTask task);
}
