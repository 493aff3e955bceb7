using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// A module an objective trains beside the model, e.g. RetroMAE's decoder: its parameters follow the model's in the
/// optimizer (named <see cref="ParameterPrefix"/> + name), its gradients are averaged over the ranks and its weights
/// checked with the model's, and it is written as <see cref="FileName"/> into every checkpoint and the final folder
/// (<see cref="Save"/>; <see cref="Load"/> reads it back when a run resumes).
/// </summary>
public sealed record TrainedModule(
    string ParameterPrefix,
    string FileName,
    nn.Module Module,
    Action<string> Save,
    Action<string> Load);
