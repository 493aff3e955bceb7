namespace M3Train.Checkpoints;

/// <summary>What the readers of weights files share: opening the file with its name in any error, and checking that an entry is theirs.</summary>
internal static class TensorFileStream
{
    const int BufferSize = 1 << 20;

    public static FileStream Open(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{path}: cannot open ({e.Message}).", e);
        }
    }

    /// <summary>An entry of another file would index this file's layout with another file's numbers.</summary>
    public static void CheckOwned(IReadOnlyList<TensorEntry> entries, TensorEntry entry)
    {
        if (entry.Index >= entries.Count || !ReferenceEquals(entries[entry.Index], entry))
            throw new ArgumentException("not an entry of this file", nameof(entry));
    }
}
