using System.CommandLine;
using M3Train.Eval;
using M3Train.Runtime;
using Serilog;
using TorchSharp;

namespace M3Train.Cli;

/// <summary>Options and set-up shared by the verbs that run a model over texts (eval, mine, teacher-scores, inspect).</summary>
public static class InferenceOptions
{
    public static Option<int> BatchSize() => new("--batch-size")
    {
        Description = "Texts per forward pass.",
        DefaultValueFactory = _ => 32,
    };

    public static Option<int> MaxQueryLength() => new("--max-query-length")
    {
        Description = "Truncate queries to this many tokens (capped to what the model takes).",
        DefaultValueFactory = _ => 512,
    };

    public static Option<int> MaxPassageLength() => new("--max-passage-length")
    {
        Description = "Truncate passages to this many tokens (capped to what the model takes).",
        DefaultValueFactory = _ => 512,
    };

    /// <summary>Loads the checkpoint on the device the user named.</summary>
    public static (TorchM3Inference Inference, torch.Device Device) Load(DirectoryInfo model, string device, int batchSize)
    {
        if (batchSize < 1) throw new M3TrainException($"--batch-size {batchSize}: must be at least 1");
        var resolved = TorchDevices.Resolve(device);
        Log.Information("Loading {Model} on {Device}", model.FullName, resolved.ToString());
        return (TorchM3Inference.Load(model.FullName, resolved, batchSize), resolved);
    }

    /// <summary>The requested length, or the model's limit (said in the log) when it asks for more.</summary>
    public static int CapLength(int requested, IM3Inference inference, string option)
    {
        if (requested < 2) throw new M3TrainException($"{option} {requested}: must be at least 2 (room for <s> and </s>)");
        if (requested <= inference.MaxTokens) return requested;
        Log.Information("{Option} {Requested}: the model takes at most {Max} tokens; using {Max}", option, requested, inference.MaxTokens);
        return inference.MaxTokens;
    }
}
