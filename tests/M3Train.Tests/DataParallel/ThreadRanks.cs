using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Tests.Distributed;
using M3Train.Tests.Training;
using M3Train.Training;
using static TorchSharp.torch;

namespace M3Train.Tests.DataParallel;

/// <summary>
/// One training step of the shipped pretrained tiny model on W data-parallel ranks that are threads of the test process (each with
/// its own replica, rendezvous connections and TCP ring links, as processes would have): every rank runs its objective on
/// its slice and the gradients are averaged as the trainer does (<see cref="GradientBuckets"/>). The tiny model has no
/// dropout, so ranks sharing one process's random generator does not matter.
/// </summary>
internal static class ThreadRanks
{
    /// <summary>
    /// The pretrained tiny model: its dense embeddings differ between texts, so the gradient through other ranks'
    /// embeddings is large enough for the two gradient modes to differ well beyond the tests' tolerance. (The random
    /// tiny-m3's collapsed embeddings all point one way, and normalization all but cancels that gradient.)
    /// </summary>
    public static readonly string ModelDir = TinyRun.Repo("data", "models", "tiny-m3-pretrained");

    public sealed record RankStep(float Loss, ObjectiveStep Step, Dictionary<string, Tensor> Grads, int OverlappedBuckets);

    /// <param name="world">Ranks.</param>
    /// <param name="objective">Rank r's objective over its replica and group.</param>
    /// <param name="batch">Rank r's slice.</param>
    /// <param name="microStep">The micro-step of the step (self-distillation starts after 0).</param>
    /// <param name="checkpointing">Activation checkpointing, through which buckets start during backward.</param>
    public static RankStep[] Step(int world, Func<M3Model, DataParallelGroup, ITrainingObjective> objective, Func<int, TrainBatch> batch,
        long microStep = 3, bool checkpointing = false, bool overlap = true) => LocalJob.Results(world, context =>
    {
        using var checkpoint = M3Checkpoint.Load(ModelDir);
        var model = checkpoint.Model;
        model.train();
        model.GradientCheckpointing = checkpointing;
        var group = new DataParallelGroup(context.Collectives, CPU);
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        using var buckets = GradientBuckets.Observing(group, trainable, model.Backbone, overlap);
        var step = objective(model, group).Step(batch(group.Rank), new StepContext(1, microStep, FinalBackward: buckets.FinalBackwardNext));
        buckets.Reduce();
        var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        return new RankStep(group.Mean(step.Loss).item<float>(), step, grads, buckets.LastOverlappedBuckets);
    }, timeout: TimeSpan.FromSeconds(60));

    /// <summary>The gradients of a model's parameters that have one.</summary>
    public static Dictionary<string, Tensor> Grads(M3Model model) =>
        model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
}
