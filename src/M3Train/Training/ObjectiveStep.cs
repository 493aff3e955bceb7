using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// What an objective's step returns for one micro-batch, on one rank. The trainer takes the mean of <see cref="Loss"/> and
/// of <see cref="Means"/> over a step's micro-batches, adds <see cref="Figures"/> up, averages all of them over the ranks,
/// and logs each under its name (metrics.jsonl, TensorBoard); the loop knows none of the names but "loss".
/// </summary>
/// <param name="Loss">This rank's share of the micro-batch's loss (the mean over ranks is the global batch's): unscaled, detached, a 0-d tensor on the rank's device.</param>
/// <param name="Means">Figures to average over a step (loss parts, mean scores): detached device tensors, read back on logged steps only.</param>
/// <param name="Figures">Figures to add up over a step, on the host (counts; health measured on a logged step's last micro-batch).</param>
/// <param name="Alarm">A short warning the progress line shows while it holds (e.g. a collapsing head), or null.</param>
public sealed record ObjectiveStep(
    Tensor Loss,
    IReadOnlyDictionary<string, Tensor> Means,
    IReadOnlyDictionary<string, double> Figures,
    string? Alarm = null);
