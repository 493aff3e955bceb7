namespace M3Train.Runtime;

/// <summary>The folder counterpart of <see cref="AtomicFile"/>: a folder filled under another name and moved into place whole.</summary>
public static class AtomicFolder
{
    /// <summary>
    /// Moves the finished <paramref name="staging"/> folder to <paramref name="target"/>. An existing target is set
    /// aside first, put back if the move fails, and removed only once the new folder is in place, so a crash leaves
    /// one whole folder there, the old or the new.
    /// </summary>
    public static void Replace(string staging, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            return;
        }
        string retired = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.replaced-{Guid.NewGuid():N}");
        Directory.Move(target, retired);
        try
        {
            Directory.Move(staging, target);
        }
        catch
        {
            Directory.Move(retired, target);
            throw;
        }
        Directory.Delete(retired, recursive: true);
    }
}
