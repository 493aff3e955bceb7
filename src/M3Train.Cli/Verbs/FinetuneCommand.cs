using System.CommandLine;
using M3Train.Training;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train finetune</c>: unified fine-tuning with self-knowledge distillation.</summary>
public static class FinetuneCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var set = CommonOptions.Set();
        var resume = TrainingOptions.Resume();
        var device = TrainingOptions.DeviceOverride();
        var devices = TrainingOptions.Devices();
        var command = new Command("finetune", "Unified fine-tuning (dense + sparse + multi-vector heads, self-knowledge distillation) from a config file.")
        {
            config, set, resume, device, devices,
        };
        command.SetAction(parse =>
        {
            var (run, options) = TrainingOptions.Read(parse, config, set, resume, device, devices, "finetune");
            var result = UnifiedFinetuneRecipe.Run(run, options);
            return result.Stopped && result.Steps < result.TotalSteps && run.Train.StopAfter is null ? 130 : 0;
        });
        return command;
    }
}
