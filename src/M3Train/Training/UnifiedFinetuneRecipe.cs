using M3Train.Data;
using M3Train.Training.Losses;
using Serilog;

namespace M3Train.Training;

/// <summary>
/// Stage 2 of M3: unified fine-tuning with self-knowledge distillation. Setup (<see cref="TrainingSetup"/>), the
/// objective (<see cref="UnifiedFinetuneObjective"/> over <see cref="M3BatchLoss"/> with the heads of
/// <c>model.heads</c>), then train and save (<see cref="Trainer"/>). Each step encodes B queries and B·G passages per
/// rank, scores them with the enabled heads, and trains on <see cref="M3UnifiedLoss"/> (per-head InfoNCE or teacher
/// KD, the ensemble, self-distillation); the sparse head's collapse is watched when it trains. A config with
/// <c>stages:</c> runs them one after another in one output folder (<see cref="StagePlan"/>), each as such a run.
/// </summary>
public static class UnifiedFinetuneRecipe
{
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null)
    {
        options = (options ?? new TrainerOptions()) with { Rows = RowRequirement.Finetune };
        return config.Stages.Count > 0 ? RunStages(new StagePlan(config), config, options) : RunOne(config, options);
    }

    static TrainerResult RunOne(RunConfig config, TrainerOptions options)
    {
        using var setup = new TrainingSetup(config, options);
        using var trainer = new Trainer(setup, Objective(setup));
        return trainer.Run();
    }

    /// <summary>
    /// The stages from the first one not done (a resume) or from the first (a fresh run); stops where a stage stops
    /// (a signal, or <c>train.stop_after</c> counted over all stages).
    /// </summary>
    static TrainerResult RunStages(StagePlan plan, RunConfig config, TrainerOptions options)
    {
        int first = 0;
        if (options.Resume is null) plan.CheckFresh();
        else first = plan.ResumeStage(options.Resume);
        // Rank 0 writes the run folder; the other ranks of a data-parallel run train and read what it wrote.
        bool writes = options.Distributed?.IsMain ?? true;
        if (writes) plan.WriteConfig();

        int steps = 0, total = 0, trainedHere = 0;
        long skipped = 0;
        TrainerState? previous = null;
        string model = config.Model.Path;
        var results = new List<TrainerResult>();
        void Finished(StagePlan.Stage stage)
        {
            var (state, checkpoint) = plan.Latest(stage)!.Value;
            steps += state.Step;
            total += state.TotalSteps;
            skipped += state.SkippedSteps;
            previous = state;
            // The next stage starts from this one's model: its final folder, or its last checkpoint if the final one is missing.
            string final = Path.Combine(stage.Output, "final");
            model = Directory.Exists(final) ? final : checkpoint;
        }
        TrainerResult Result(bool stopped, string? final) => new(steps, total, skipped,
            results.Count > 0 ? results[0].FirstLoss : double.NaN, results.Count > 0 ? results[^1].LastLoss : double.NaN, plan.Output, final, stopped);

        foreach (var stage in plan.Stages.Take(first)) Finished(stage);
        foreach (var stage in plan.Stages.Skip(first))
        {
            var stageConfig = plan.ConfigOf(stage, model, trainedHere);
            if (stageConfig.Train.StopAfter is <= 0) return Result(stopped: true, final: null);
            bool resumes = options.Resume is not null && plan.Latest(stage) is not null;
            Log.Information("Stage {Stage}: heads [{Heads}], self-distillation {Distill}, lr {Lr}, from {Model}", stage.Label,
                string.Join(", ", stageConfig.Model.Heads.Select(h => h.ToString().ToLowerInvariant())), stageConfig.Loss.UseSelfDistill, stageConfig.Train.Lr,
                resumes ? "its checkpoint" : model);
            var result = RunOne(stageConfig, options with
            {
                Resume = resumes ? options.Resume : null,
                Recipe = $"finetune {stage.Label}",
                Start = resumes ? null : new TrainerState { Stage = stage.Label, Loader = previous?.Loader, MicroStep = previous?.MicroStep ?? 0 },
            });
            results.Add(result);
            trainedHere += result.SessionSteps;
            if (result.Stopped)
            {
                var state = plan.Latest(stage)!.Value.State;
                return Result(stopped: true, final: null) with { Steps = steps + state.Step, TotalSteps = total + state.TotalSteps, SkippedSteps = skipped + state.SkippedSteps };
            }
            Finished(stage);
        }
        return Result(stopped: false, writes ? plan.PublishFinal() : Path.Combine(plan.Output, "final"));
    }

    /// <summary>The recipe's objective over what <paramref name="setup"/> prepared.</summary>
    public static UnifiedFinetuneObjective Objective(TrainingSetup setup)
    {
        setup.RequireRows(RowRequirement.Finetune);
        var config = setup.Config;
        LogDistillation(setup.Data.Datasets, config.Loss);
        var heads = config.Model.Heads;
        // The alarms warn in the run's log and on its progress line, which are rank 0's: they watch rank 0's slice of each batch.
        bool watch = setup.Group.IsMain;
        var alarm = watch && heads.Contains(M3Head.Sparse) ? new SparseCollapseAlarm(config.Train.SparseZeroWarning, config.Train.SparseZeroWindow) : null;
        var denseAlarm = watch && heads.Contains(M3Head.Dense) && config.Model.NormalizeEmbeddings
            ? new DenseCollapseAlarm(config.Train.DenseCollapseGap, config.Train.DenseCollapseWindow) : null;
        return new UnifiedFinetuneObjective(setup.Model, setup.Group, new M3BatchLoss(config.Loss, heads), SubBatching.Of(config.Train),
            config.Train.Seed, alarm: alarm, denseAlarm: denseAlarm);
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
