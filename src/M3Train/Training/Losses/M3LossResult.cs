using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// What <see cref="M3UnifiedLoss"/> returns: the loss to backpropagate and its parts for logging, all scalar
/// tensors on the scores' device (reading them is the caller's host sync, when it logs). The parts are
/// detached; a part is null when its head, the ensemble or self-distillation did not take part.
/// Names follow <c>metrics.jsonl</c>.
/// </summary>
/// <param name="Loss">L_final (or L without self-distillation), with its graph.</param>
/// <param name="LossDense">L_dense (teacher variant when teacher scores are given).</param>
/// <param name="LossSparse">L_lex.</param>
/// <param name="LossColbert">L_mul.</param>
/// <param name="LossEnsemble">L_inter.</param>
/// <param name="LossDistill">L' = weighted mean of the heads' self-distillation losses.</param>
public sealed record M3LossResult(
    Tensor Loss,
    Tensor? LossDense,
    Tensor? LossSparse,
    Tensor? LossColbert,
    Tensor? LossEnsemble,
    Tensor? LossDistill);
