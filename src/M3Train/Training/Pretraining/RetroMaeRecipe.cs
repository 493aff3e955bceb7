using M3Train.Data;

namespace M3Train.Training.Pretraining;

/// <summary>
/// RetroMAE pretraining on <c>{"text"}</c> rows: setup with the masked-LM head (<see cref="TrainingSetup"/>), the
/// objective (<see cref="RetroMaeObjective"/>: encoder MLM plus enhanced decoding from the CLS state through its own
/// decoder, which is trained, checkpointed and saved beside the model), then train and save (<see cref="Trainer"/>).
/// </summary>
public static class RetroMaeRecipe
{
    public static TrainerResult Run(RunConfig config, TrainerOptions? options = null)
    {
        config = Prepare(config);
        using var setup = new TrainingSetup(config, (options ?? new TrainerOptions()) with { Recipe = "pretrain-retromae", Rows = RowRequirement.RetroMae }, withLmHead: true);
        using var trainer = new Trainer(setup, Objective(setup));
        return trainer.Run();
    }

    /// <summary>The run config as the recipe trains it: <c>model.heads</c> [dense].</summary>
    public static RunConfig Prepare(RunConfig config) => PretrainRecipe.EncoderOnly(config);

    /// <summary>The recipe's objective over what <paramref name="setup"/> prepared (loaded with the masked-LM head).</summary>
    public static RetroMaeObjective Objective(TrainingSetup setup)
    {
        setup.RequireRows(RowRequirement.RetroMae);
        var c = setup.Config;
        return new RetroMaeObjective(setup.Model, setup.Group, c.Pretrain, setup.Tokenizer, c.Model.Path, SubBatching.Of(c.Train), c.Train.Seed);
    }
}
