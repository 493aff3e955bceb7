using M3Train.Eval;
using M3Train.Model;
using M3Train.Runtime;
using Serilog;
using TorchSharp;

namespace M3Train.Cli;

/// <summary>Set-up shared by the verbs that run a model over texts with <see cref="TorchM3Inference"/> (eval, mine, teacher-scores, inspect); their options are <see cref="PairInferenceOptions"/>.</summary>
public static class ModelInference
{
    /// <summary>Loads the checkpoint on the device and in the precision the user named.</summary>
    public static (TorchM3Inference Inference, torch.Device Device) Load(ModelRun run)
    {
        var resolved = TorchDevices.Resolve(run.Device);
        ComputeThreads.Apply(run.Threads, hostThreads: 0, "--threads");
        Log.Information("Loading {Model} on {Device} ({Precision})", run.Model.FullName, resolved.ToString(), run.Precision);
        var compute = ModelOptions.Compute(run.Precision);
        return (TorchM3Inference.Load(run.Model.FullName, resolved, run.BatchSize, compute), resolved);
    }

    /// <summary>The requested length, or the model's limit (said in the log) when it asks for more.</summary>
    public static int CapLength(int requested, IM3Inference inference, string option)
    {
        if (requested <= inference.MaxTokens) return requested;
        Log.Information("{Option} {Requested}: the model takes at most {Max} tokens; using {Max}", option, requested, inference.MaxTokens);
        return inference.MaxTokens;
    }

    /// <summary>The query and passage limits of <paramref name="request"/>, each capped as <see cref="CapLength"/> does.</summary>
    public static (int Query, int Passage) CapLengths(PairInference request, IM3Inference inference) =>
        (CapLength(request.MaxQueryLength, inference, "--max-query-length"), CapLength(request.MaxPassageLength, inference, "--max-passage-length"));

    /// <summary>Parses <c>--weights wd,ws,wc</c>.</summary>
    public static M3ScoreWeights Weights(string text)
    {
        try
        {
            return M3ScoreWeights.Parse(text);
        }
        catch (M3TrainException e)
        {
            throw new M3TrainException($"--weights: {e.Message}", e);
        }
    }
}
