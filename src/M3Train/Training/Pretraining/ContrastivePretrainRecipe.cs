using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using M3Train.Training.Losses;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Contrastive pretraining on unsupervised <c>{"query", "pos"}</c> pairs: dense InfoNCE at <c>loss.temperature</c>
/// (the CLS state, L2-normalized when <c>model.normalize_embeddings</c>) with in-batch and, with several ranks,
/// cross-device negatives: every rank's queries are scored against the passages of all ranks; G = 1. It is the
/// fine-tuning objective (<see cref="UnifiedFinetuneObjective"/>) with the dense head alone, encoding only the dense
/// part. Passages equal to a row's positive are excluded as negatives when <c>loss.mask_duplicate_negatives</c>.
/// The reference's batches (hundreds of pairs per rank and bin) fit only through GradCache, so
/// <c>train.sub_batch_size</c> is required: memory is bounded by one sub-batch, and only [N, D] embeddings are cached.
/// </summary>
public static class ContrastivePretrainRecipe
{
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null)
    {
        config = Prepare(config);
        using var setup = new TrainingSetup(config, (options ?? new TrainerOptions()) with { Recipe = "pretrain-contrastive", Rows = RowRequirement.Contrastive });
        using var trainer = new Trainer(setup, Objective(setup));
        return trainer.Run();
    }

    /// <summary>Checks the settings the recipe needs (sub-batches, G = 1) and narrows <c>model.heads</c> to the dense one.</summary>
    public static RunConfig Prepare(RunConfig config)
    {
        if (config.Train.SubBatchSize is null && config.Train.SubBatchSizes.Count == 0)
            throw new M3TrainException("train.sub_batch_size is not set: contrastive pretraining runs its large batches " +
                $"(data.batch_sizes, the reference's {string.Join(", ", PretrainConfig.UnsupervisedBatchSizes)} pairs per rank and bin) " +
                "through GradCache sub-batches, so memory is bounded by one sub-batch; set it, e.g. train.sub_batch_size: 64 (or train.sub_batch_sizes per bin).");
        if (config.Data.TrainGroupSize != 1)
            throw new M3TrainException($"data.train_group_size is {config.Data.TrainGroupSize}: contrastive pretraining trains on " +
                "{\"query\", \"pos\"} pairs (G = 1, in-batch negatives only); set data.train_group_size: 1.");
        return PretrainRecipe.EncoderOnly(config);
    }

    /// <summary>The recipe's objective over what <paramref name="setup"/> prepared.</summary>
    public static UnifiedFinetuneObjective Objective(TrainingSetup setup)
    {
        setup.RequireRows(RowRequirement.Contrastive);
        // A masked-LM head that came with the checkpoint gets no gradient here: keep it out of the optimizer.
        foreach (var p in setup.Model.LmHead?.parameters() ?? [])
            p.requires_grad_(false);
        var c = setup.Config;
        return Objective(setup.Model, setup.Group, c.Loss, SubBatching.Of(c.Train), c.Train.Seed);
    }

    /// <summary>Dense InfoNCE of <paramref name="model"/> (this rank's), in GradCache sub-batches (<paramref name="subBatchSize"/>), encoding only the dense part.</summary>
    public static UnifiedFinetuneObjective Objective(M3Model model, DataParallelGroup group, LossConfig loss, SubBatching subBatchSize, long seed) =>
        new(model, group, new M3BatchLoss(loss, [M3Head.Dense]), subBatchSize, seed, EncodingParts.Dense);
}
