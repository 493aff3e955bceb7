namespace M3Train.Training;

/// <summary>
/// Stage 2 of M3: unified fine-tuning with self-knowledge distillation (M3-SPEC sections 4, 6, 7, 9).
/// Each step encodes B queries and B·G passages per replica, scores them with the enabled heads, and trains
/// on <see cref="Losses.M3UnifiedLoss"/> (per-head InfoNCE or teacher KD, the ensemble, self-distillation).
/// </summary>
public static class UnifiedFinetuneRecipe
{
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null)
    {
        options ??= new TrainerOptions();
        using var trainer = new Trainer(config, options, t =>
            new M3StepRunner(t.Replicas, new M3BatchLoss(config.EffectiveLoss), config.Train.SubBatchSize, config.Train.Seed)
            {
                InjectFailure = options.InjectReplicaFailure,
            });
        return trainer.Run();
    }
}
