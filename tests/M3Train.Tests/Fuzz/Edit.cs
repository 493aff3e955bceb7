namespace M3Train.Tests.Fuzz;

/// <summary>One change to a file's bytes, with the words that describe it in a failure report.</summary>
internal sealed record Edit(string Description, Func<byte[], byte[]> Apply)
{
    public override string ToString() => Description;
}
