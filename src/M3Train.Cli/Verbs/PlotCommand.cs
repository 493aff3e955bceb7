using System.CommandLine;
using M3Train.Checkpoints;
using ScottPlot;
using Serilog;
using SkiaSharp;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train plot</c>: a run's metrics.jsonl as one image of four panels over steps (the loss per head, the learning
/// rate, the heads' health figures and the evaluation figures), so a run can be looked at without TensorBoard.
/// Drawn by ScottPlot; PNG, or SVG when the output ends in .svg.
/// </summary>
public static class PlotCommand
{
    /// <summary>Health figures drawn, where the run logged them: scores of positives and negatives per head, and the collapse alarms' inputs.</summary>
    static readonly string[] HealthFigures =
    [
        "dense_pos", "dense_neg", "sparse_pos", "sparse_neg", "colbert_pos", "colbert_neg", "sparse_zero_share", "colbert_self_similarity",
    ];

    static readonly Argument<DirectoryInfo> RunArgument = RunFolder();

    static readonly Option<FileInfo> OutputOption =
        PathOptions.Output("--output", "Image to write: .png, or .svg (default: RUN_DIR/metrics.png).", required: false);

    static readonly Option<int> WidthOption = Pixels("--width", "Image width in pixels.", 1400);
    static readonly Option<int> HeightOption = Pixels("--height", "Image height in pixels.", 1000);

    public static Command Create()
    {
        var command = new Command("plot", "Plot a run's metrics.jsonl (loss per head, learning rate, health, evaluation) over steps as PNG or SVG.")
        {
            RunArgument, OutputOption, WidthOption, HeightOption,
        };
        command.SetAction(parse =>
        {
            var run = parse.GetValue(RunArgument)!;
            var output = parse.GetValue(OutputOption) ?? new FileInfo(Path.Combine(run.FullName, "metrics.png"));
            Log.Information("Wrote {Output}", Render(RunMetrics.ReadRun(run.FullName), output, parse.GetValue(WidthOption), parse.GetValue(HeightOption)));
            return 0;
        });
        return command;
    }

    static Option<int> Pixels(string name, string description, int defaultValue)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 200 or > 10000) result.AddError($"{name} must be 200 to 10000 pixels.");
        });
        return option;
    }

    static Argument<DirectoryInfo> RunFolder()
    {
        var argument = new Argument<DirectoryInfo>("RUN_DIR") { Description = "A run folder (the config's output_dir), holding metrics.jsonl (a staged run: its stages' one after another)." };
        argument.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<DirectoryInfo>() is { Exists: false } folder) result.AddError($"RUN_DIR {folder}: no such folder.");
        });
        return argument;
    }

    /// <summary>Draws the four panels into <paramref name="output"/> (SVG when it ends in .svg, else PNG); returns the output's name.</summary>
    public static string Render(RunMetrics metrics, FileInfo output, int width, int height)
    {
        var figure = new Multiplot { Layout = new ScottPlot.MultiplotLayouts.Grid(2, 2) };
        figure.AddPlots(4);
        var names = metrics.Series.Keys.ToList();
        Panel(figure.GetPlot(0), metrics, "Loss", names.Where(n => n.StartsWith("loss", StringComparison.Ordinal)));
        Panel(figure.GetPlot(1), metrics, "Learning rate", names.Where(n => n == "lr"));
        Panel(figure.GetPlot(2), metrics, "Health", HealthFigures.Where(names.Contains));
        Panel(figure.GetPlot(3), metrics, "Evaluation", names.Where(ModelCard.IsEvaluationFigure));

        using var file = VerbOutput.Open("--output", output);
        if (output.Extension.Equals(".svg", StringComparison.OrdinalIgnoreCase))
        {
            using (var stream = new SKManagedWStream(file.Stream))
            using (var canvas = SKSvgCanvas.Create(new SKRect(0, 0, width, height), stream))
                figure.Render(canvas, new PixelRect(0, width, height, 0));
        }
        else
        {
            file.Stream.Write(figure.Render(width, height).GetImageBytes(ImageFormat.Png));
        }
        file.Commit();
        return file.Name;
    }

    static void Panel(Plot plot, RunMetrics metrics, string title, IEnumerable<string> series)
    {
        var shown = series.ToList();
        plot.Title(shown.Count > 0 ? title : $"{title} (not in this run's metrics)");
        plot.XLabel("step");
        foreach (string name in shown)
        {
            var points = metrics.Series[name];
            var line = plot.Add.ScatterLine(points.Select(p => p.Step).ToArray(), points.Select(p => p.Value).ToArray());
            if (shown.Count > 1) line.LegendText = name;
        }
        if (shown.Count > 1) plot.ShowLegend(Alignment.UpperRight);
    }
}
