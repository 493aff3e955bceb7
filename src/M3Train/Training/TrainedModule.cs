using M3Train.DataParallel;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// A module an objective trains beside the model, e.g. RetroMAE's decoder: one replica per device
/// (<see cref="Replicas"/>), whose master's parameters follow the model's in the optimizer (named
/// <see cref="ParameterPrefix"/> + name), reduced, broadcast and checked with the model's, and written as
/// <see cref="FileName"/> into every checkpoint and the final folder (<see cref="Save"/>; <see cref="Load"/> reads it
/// back into the master when a run resumes).
/// </summary>
public sealed record TrainedModule(
    string ParameterPrefix,
    string FileName,
    IReplicaGroup<nn.Module> Replicas,
    Action<string> Save,
    Action<string> Load);
