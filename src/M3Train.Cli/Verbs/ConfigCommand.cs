using System.CommandLine;
using M3Train.Config;
using M3Train.Training;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train config</c>: the run config's keys (<c>--reference</c>: type, default and doc of each, from the config
/// records themselves) or a config file as the trainer would resolve it (<c>--show F [--set k=v]</c>).
/// </summary>
public static class ConfigCommand
{
    static readonly Option<bool> ReferenceOption = new("--reference")
    {
        Description = "Print every key of a run config with its type, default and documentation.",
    };

    static readonly Option<FileInfo> ShowOption =
        PathOptions.Input("--show", "Print this config file resolved: defaults filled in, --set overrides applied, validated.", required: false);

    static readonly Option<string[]> SetOption = CommonOptions.Set();

    public static Command Create()
    {
        var command = new Command("config", "Print the run config reference (--reference) or a resolved config (--show F [--set k=v]).")
        {
            ReferenceOption, ShowOption, SetOption,
        };
        command.Validators.Add(result =>
        {
            bool reference = result.GetValue(ReferenceOption), show = result.GetValue(ShowOption) is not null;
            if (reference == show) result.AddError("give either --reference or --show FILE.");
            else if (reference && result.GetValue(SetOption) is { Length: > 0 }) result.AddError("--set goes with --show.");
        });
        command.SetAction(parse =>
        {
            Console.Out.Write(parse.GetValue(ShowOption) is { } file
                ? ConfigWriter.ToYaml(RunConfig.Load(file.FullName, parse.GetValue(SetOption) ?? []))
                : ConfigReference.ToText(ConfigReference.For<RunConfig>(XmlDocs.For(typeof(RunConfig).Assembly))));
            return 0;
        });
        return command;
    }
}
