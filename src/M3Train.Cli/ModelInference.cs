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
        var (resolved, compute) = Prepare(run);
        Log.Information("Loading {Model} on {Device} ({Precision})", run.Model.FullName, resolved.ToString(), run.Precision);
        return (TorchM3Inference.Load(run.Model.FullName, resolved, run.BatchSize, compute), resolved);
    }

    /// <summary>What every verb that runs a libtorch model does first: the device and threads the user named, and the precision.</summary>
    public static (torch.Device Device, ComputePrecision Precision) Prepare(ModelRun run)
    {
        var device = TorchDevices.Resolve(run.Device);
        ComputeThreads.Apply(run.Threads, hostThreads: 0, "--threads");
        return (device, ModelOptions.Compute(run.Precision));
    }

    /// <summary>The requested length, or the model's limit <paramref name="modelMax"/> (said in the log) when it asks for more.</summary>
    public static int CapLength(int requested, int modelMax, string option)
    {
        if (requested <= modelMax) return requested;
        Log.Information("{Option} {Requested}: the model takes at most {Max} tokens; using {Max}", option, requested, modelMax);
        return modelMax;
    }

    /// <summary>The query and passage limits of <paramref name="request"/>, each capped as <see cref="CapLength"/> does.</summary>
    public static (int Query, int Passage) CapLengths(PairInference request, IM3Inference inference) =>
        (CapLength(request.MaxQueryLength, inference.MaxTokens, "--max-query-length"), CapLength(request.MaxPassageLength, inference.MaxTokens, "--max-passage-length"));

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
