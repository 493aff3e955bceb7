using M3Train.Training.Losses;
using Serilog;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Stage 1 of M3 (M3-SPEC section 8) on the shared <see cref="Trainer"/>: configs, precision, activation
/// checkpointing, checkpoints, <c>--resume</c>, metrics and fault handling are the fine-tuning recipe's; only the
/// objective differs (<c>pretrain.objective</c>): <see cref="RetroMaeObjective"/> on texts or
/// <see cref="ContrastivePretrainObjective"/> on pairs. Pretraining trains the encoder; the sparse and
/// multi-vector heads are kept as loaded (and saved), whatever <c>model.heads</c> says.
/// </summary>
public static class PretrainRecipe
{
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null)
    {
        var run = Prepare(config);
        var objective = run.Pretrain.Objective;
        var trainerOptions = (options ?? new TrainerOptions()) with
        {
            Recipe = $"pretrain-{objective.ToString().ToLowerInvariant()}",
            WithLmHead = objective == PretrainObjective.Retromae,
        };
        using var trainer = new Trainer(run, trainerOptions, t => objective switch
        {
            PretrainObjective.Retromae => new RetroMaeObjective(t.Replicas, run.Pretrain, t.Tokenizer, run.Model.Path, run.Train.SubBatchSize, run.Train.Seed),
            _ => Contrastive(t, run),
        });
        return trainer.Run();
    }

    /// <summary>Checks the settings the objective needs and narrows <c>model.heads</c> to the dense one.</summary>
    public static RunConfig Prepare(RunConfig config)
    {
        if (config.Pretrain.Objective == PretrainObjective.Contrastive)
        {
            if (config.Train.SubBatchSize is null)
                throw new M3TrainException("train.sub_batch_size is not set: contrastive pretraining runs its large batches " +
                    $"(data.batch_sizes, the spec's {string.Join(", ", PretrainConfig.UnsupervisedBatchSizes)} pairs per replica and bin) " +
                    "through GradCache sub-batches, so memory is bounded by one sub-batch; set it, e.g. train.sub_batch_size: 64.");
            if (config.Data.TrainGroupSize != 1)
                throw new M3TrainException($"data.train_group_size is {config.Data.TrainGroupSize}: contrastive pretraining trains on " +
                    "{\"query\", \"pos\"} pairs (G = 1, in-batch negatives only); set data.train_group_size: 1.");
        }
        if (!config.Model.Heads.SequenceEqual([M3Head.Dense]))
            Log.Information("Pretraining trains the encoder only: the sparse and multi-vector heads are kept as loaded (model.heads [dense])");
        return config with { Model = config.Model with { Heads = [M3Head.Dense] } };
    }

    static ContrastivePretrainObjective Contrastive(Trainer trainer, RunConfig run)
    {
        // A masked-LM head that came with the checkpoint gets no gradient here: keep it out of the optimizer.
        foreach (var model in trainer.Replicas.Replicas)
            foreach (var p in model.LmHead?.parameters() ?? [])
                p.requires_grad_(false);
        return new ContrastivePretrainObjective(trainer.Replicas, run.EffectiveLoss, run.Train.SubBatchSize!.Value, run.Train.Seed,
            run.Model.NormalizeEmbeddings);
    }
}
