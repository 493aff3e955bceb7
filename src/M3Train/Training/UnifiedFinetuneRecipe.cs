using M3Train.Data;
using M3Train.Training.Losses;

namespace M3Train.Training;

/// <summary>
/// Stage 2 of M3: unified fine-tuning with self-knowledge distillation. Setup (<see cref="TrainingSetup"/>), the
/// objective (<see cref="UnifiedFinetuneObjective"/> over <see cref="M3BatchLoss"/> with the heads of
/// <c>model.heads</c>), then train and save (<see cref="Trainer"/>). Each step encodes B queries and B·G passages per
/// replica, scores them with the enabled heads, and trains on <see cref="M3UnifiedLoss"/> (per-head InfoNCE or teacher
/// KD, the ensemble, self-distillation); the sparse head's collapse is watched when it trains.
/// </summary>
public static class UnifiedFinetuneRecipe
{
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null)
    {
        using var setup = new TrainingSetup(config, options ?? new TrainerOptions());
        using var trainer = new Trainer(setup, Objective(setup));
        return trainer.Run();
    }

    /// <summary>The recipe's objective over what <paramref name="setup"/> prepared.</summary>
    public static UnifiedFinetuneObjective Objective(TrainingSetup setup)
    {
        setup.RequireRows(RowKind.Group, "finetune", "{\"query\",\"pos\",\"neg\"} rows");
        var config = setup.Config;
        var heads = config.Model.Heads;
        var alarm = heads.Contains(M3Head.Sparse) ? new SparseCollapseAlarm(config.Train.SparseZeroWarning, config.Train.SparseZeroWindow) : null;
        var denseAlarm = heads.Contains(M3Head.Dense) && config.Model.NormalizeEmbeddings
            ? new DenseCollapseAlarm(config.Train.DenseCollapseGap, config.Train.DenseCollapseWindow) : null;
        return new UnifiedFinetuneObjective(setup.Replicas, new M3BatchLoss(config.Loss, heads), config.Train.SubBatchSize, config.Train.Seed,
            alarm: alarm, denseAlarm: denseAlarm);
    }
}
