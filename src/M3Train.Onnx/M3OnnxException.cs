namespace M3Train.Onnx;

/// <summary>
/// An error caused by the user's input to the ONNX export or ONNX inference (a missing weight or file, an opset,
/// an existing folder). This project cannot see <c>M3Train.M3TrainException</c> (it lives in the TorchSharp library),
/// so the CLI treats this type the same way: it prints the message alone.
/// </summary>
public sealed class M3OnnxException : Exception
{
    public M3OnnxException(string message) : base(message) { }
    public M3OnnxException(string message, Exception inner) : base(message, inner) { }
}
