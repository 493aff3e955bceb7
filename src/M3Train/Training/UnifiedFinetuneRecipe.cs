using M3Train.Data;
using M3Train.Training.Losses;
using Serilog;

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
        setup.RequireRows(RowKind.Group,
            "fine-tuning trains on {\"query\", \"pos\", \"neg\"} rows, this dataset holds {\"text\"} rows (those are for m3train pretrain with pretrain.objective: retromae).");
        var config = setup.Config;
        LogDistillation(setup.Data.Datasets, config.Loss);
        var heads = config.Model.Heads;
        var alarm = heads.Contains(M3Head.Sparse) ? new SparseCollapseAlarm(config.Train.SparseZeroWarning, config.Train.SparseZeroWindow) : null;
        return new UnifiedFinetuneObjective(setup.Replicas, new M3BatchLoss(config.Loss, heads), config.Train.SubBatchSize, config.Train.Seed,
            alarm: alarm);
    }

    /// <summary>Says which datasets distil from their teacher scores, and warns once when scores are left unused.</summary>
    static void LogDistillation(IReadOnlyList<TrainDataset> datasets, LossConfig loss)
    {
        var scored = datasets.Where(d => d.HasTeacherScores).Select(d => d.Name).ToList();
        var plain = datasets.Where(d => !d.HasTeacherScores).Select(d => d.Name).ToList();
        if (!loss.KnowledgeDistillation)
        {
            if (scored.Count > 0)
                Log.Warning("{Datasets} carry teacher scores (pos_scores/neg_scores) but loss.knowledge_distillation is false: they train on the hard labels. " +
                            "Set loss.knowledge_distillation: true to distil from them", string.Join(", ", scored));
            return;
        }
        if (scored.Count == 0)
        {
            Log.Warning("loss.knowledge_distillation is true but no dataset has teacher scores in every row: every dataset trains on the hard labels");
            return;
        }
        Log.Information("Knowledge distillation ({KdLoss}) from the data's teacher scores: {Datasets}",
            loss.KdLossType == KdLossType.M3KdLoss ? "m3_kd_loss" : "kl_div", string.Join(", ", scored));
        if (plain.Count > 0)
            Log.Information("Without teacher scores in every row, on the hard labels: {Datasets}", string.Join(", ", plain));
    }
}
