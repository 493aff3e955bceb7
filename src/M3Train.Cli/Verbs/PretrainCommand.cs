using System.CommandLine;
using M3Train.Training.Pretraining;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train pretrain</c>: RetroMAE or contrastive pretraining (<c>pretrain.objective</c>) on the shared trainer.</summary>
public static class PretrainCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var set = CommonOptions.Set();
        var resume = TrainingOptions.Resume();
        var device = TrainingOptions.DeviceOverride();
        var devices = TrainingOptions.Devices();
        var command = new Command("pretrain", "Stage-1 pretraining from a config file: RetroMAE on {\"text\"} rows or contrastive (dense InfoNCE) on {\"query\",\"pos\"} pairs.")
        {
            config, set, resume, device, devices,
        };
        command.SetAction(parse =>
        {
            var (run, options) = TrainingOptions.Read(parse, config, set, resume, device, devices, "pretrain");
            var result = PretrainRecipe.Run(run, options);
            return result.Stopped && result.Steps < result.TotalSteps && run.Train.StopAfter is null ? 130 : 0;
        });
        return command;
    }
}
