using M3Train.Data;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// What a recipe trains for, plugged into <see cref="Trainer"/>: the unified M3 loss (fine-tuning), dense
/// InfoNCE (contrastive pretraining) or RetroMAE. The trainer owns the loop, optimizer, schedule,
/// checkpoints, metrics and faults; the objective turns one micro-batch into accumulated gradients.
/// </summary>
public interface ITrainingObjective
{
    /// <summary>Forward and backward of one micro-batch (one batch per replica); returns "loss" and its parts, detached.</summary>
    IReadOnlyDictionary<string, Tensor> Backward(IReadOnlyList<TrainBatch> batches, long microStep, double scale);

    /// <summary>Trainable parameters beyond the model's (e.g. RetroMAE's decoder), with unique names.</summary>
    IEnumerable<(string Name, Parameter Param)> ExtraParameters => [];

    /// <summary>Sums the replicas' gradients of <see cref="ExtraParameters"/> into the master's, after the trainer reduced the model's.</summary>
    void ReduceGradients() { }

    /// <summary>Copies the master's <see cref="ExtraParameters"/> to the other replicas, after each optimizer step.</summary>
    void BroadcastWeights() { }

    /// <summary>Asks the next <see cref="Backward"/> to measure the health of the representations it encodes (a logged step).</summary>
    void RequestHealth() { }

    /// <summary>Health figures measured since the last request (named as in metrics.jsonl); empty when none.</summary>
    IReadOnlyDictionary<string, double> TakeHealth() => new Dictionary<string, double>();

    /// <summary>Writes the objective's own state into a checkpoint folder (e.g. the decoder).</summary>
    void Save(string directory) { }

    /// <summary>Reads what <see cref="Save"/> wrote when a run resumes.</summary>
    void Load(string directory) { }
}
