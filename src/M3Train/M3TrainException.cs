namespace M3Train;

/// <summary>An error caused by the user's input (a file, a key, an option): the CLI prints its message alone, without a stack trace.</summary>
public class M3TrainException : Exception
{
    public M3TrainException(string message) : base(message) { }
    public M3TrainException(string message, Exception inner) : base(message, inner) { }
}
