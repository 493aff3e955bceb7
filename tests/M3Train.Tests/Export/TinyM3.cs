using System.Collections;
using M3Train.Onnx;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace M3Train.Tests.Export;

/// <summary>The golden fixture folder and its tiny M3 checkpoint, read with TorchSharp.PyBridge into plain arrays.</summary>
internal static class TinyM3
{
    /// <summary>M3_GOLDEN_DIR when set, else the project's copy of the fixtures.</summary>
    public static string GoldenDir => GoldenFolder.Path;

    public static string ModelDir => Path.Combine(GoldenDir, "tiny-m3");

    public static OnnxExportSource Source()
    {
        var weights = new Dictionary<string, OnnxWeight>();
        foreach (var (key, tensor) in Safetensors.LoadStateDict(Path.Combine(ModelDir, "model.safetensors")))
        {
            using (tensor) weights[key] = ToWeight(tensor);
        }
        foreach (string head in new[] { "colbert_linear", "sparse_linear" })
        {
            Hashtable state = PyTorchUnpickler.UnpickleStateDict(Path.Combine(ModelDir, $"{head}.pt"));
            foreach (DictionaryEntry entry in state)
            {
                using var tensor = (Tensor)entry.Value!;
                weights[$"{head}.{entry.Key}"] = ToWeight(tensor);
            }
        }
        return new OnnxExportSource
        {
            Config = OnnxEncoderConfig.FromHfConfig(Path.Combine(ModelDir, "config.json")),
            Weights = weights,
            TokenizerFolder = ModelDir,
            SourceCheckpoint = ModelDir,
        };
    }

    public static OnnxWeight ToWeight(Tensor tensor)
    {
        using var values = tensor.to_type(ScalarType.Float32).contiguous();
        return new OnnxWeight(values.data<float>().ToArray(), tensor.shape);
    }

    public static (long[] Data, long[] Shape) Int64s(Tensor tensor)
    {
        using var values = tensor.to_type(ScalarType.Int64).contiguous();
        return (values.data<long>().ToArray(), tensor.shape);
    }

    /// <summary>A fresh folder under the system temp folder, deleted with the returned handle.</summary>
    public static TempFolder Temp() => new();
}
