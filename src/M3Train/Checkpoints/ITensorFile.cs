using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// A weights file opened for reading: its tensors described and checked first (<see cref="Entries"/>), each read
/// on demand, so a loader can match the whole file against the model before it allocates anything.
/// Implemented for safetensors (<see cref="SafetensorsReader"/>) and torch.save zip files (<see cref="TorchPickleReader"/>).
/// </summary>
public interface ITensorFile : IDisposable
{
    string Path { get; }

    /// <summary>Every tensor, in the file's order.</summary>
    IReadOnlyList<TensorEntry> Entries { get; }

    /// <summary>Allocates the entry's tensor on the CPU and fills it from the file.</summary>
    Tensor Read(TensorEntry entry);
}
