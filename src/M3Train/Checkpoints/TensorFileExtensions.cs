using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>Reading a whole <see cref="ITensorFile"/> at once, for tools that rewrite every tensor of a file.</summary>
public static class TensorFileExtensions
{
    /// <summary>All tensors, on the CPU, in the file's order; on failure none stays allocated.</summary>
    public static List<KeyValuePair<string, Tensor>> ReadAll(this ITensorFile file)
    {
        var result = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var entry in file.Entries) result.Add(new(entry.Name, file.Read(entry)));
            return result;
        }
        catch
        {
            foreach (var (_, t) in result) t.Dispose();
            throw;
        }
    }
}
