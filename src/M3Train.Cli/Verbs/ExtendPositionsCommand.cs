using System.CommandLine;
using M3Train.Checkpoints;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train extend-positions</c>: a copy of a checkpoint folder with a longer position table, so the model
/// takes longer texts (XLM-R's 514 rows → BGE-M3's 8194, 8192 tokens). See <see cref="PositionExtension"/>.
/// </summary>
public static class ExtendPositionsCommand
{
    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model();

    static readonly Option<int> MaxPositionsOption = new("--max-positions")
    {
        Description = "Rows of the new position table (max_position_embeddings); the model then takes this minus 2 tokens. BGE-M3: 8194.",
        Required = true,
    };

    static readonly Option<DirectoryInfo> OutputOption =
        PathOptions.OutputFolder("--output", "Folder to write the extended checkpoint to (every other file of --model is copied).");

    static readonly Option<PositionExtensionMethod> MethodOption = new("--method")
    {
        Description = "copy: repeat the learned rows cyclically after the old ones (short texts encode exactly as before); " +
                      "interpolate: stretch the learned rows over the new length.",
        DefaultValueFactory = _ => PositionExtensionMethod.Copy,
    };

    static readonly Option<bool> ForceOption = new("--force")
    {
        Description = "Replace an existing output folder.",
    };

    public static Command Create()
    {
        var command = new Command("extend-positions", "Grow a checkpoint's position table (e.g. 514 → 8194 rows) before long-text pretraining.")
        {
            ModelOption, MaxPositionsOption, OutputOption, MethodOption, ForceOption,
        };
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!,
            parseResult.GetValue(MaxPositionsOption),
            parseResult.GetValue(OutputOption)!,
            parseResult.GetValue(MethodOption),
            parseResult.GetValue(ForceOption)));
        return command;
    }

    static int Run(DirectoryInfo model, int maxPositions, DirectoryInfo output, PositionExtensionMethod method, bool force)
    {
        PositionExtension.Extend(model.FullName, output.FullName, maxPositions, method, force);
        return 0;
    }
}
